# The gdb commands for weft fibers, loaded by weft.py (next to this directory):
# register() adds the commands, the fiber unwinder and its event hooks to gdb.
#
#   common.py    the error the commands raise, symbol lookup, gdb state helpers
#   context.py   where jump_fcontext saves a suspended fiber's registers
#   calls.py     calling a function of the program on one thread, by hand
#   layout.py    reading weft_debug_layout and the list of fiber stacks
#   stacks.py    the fiber unwinder, a fiber's frames, where it waits
#   commands.py  weft, weft fibers, weft bt, weft select
#   cores.py     weft gcore, weft restore-core

import gdb
import gdb.unwinder

from . import commands, cores, stacks


def register():
    gdb.unwinder.register_unwinder(None, stacks.unwinder, replace=True)
    gdb.events.cont.connect(stacks.clear_selection)
    gdb.events.exited.connect(stacks.clear_selection)
    commands.WeftCommand()
    commands.FibersCommand()
    commands.BacktraceCommand()
    commands.SelectCommand()
    cores.GcoreCommand()
    cores.RestoreCoreCommand()
