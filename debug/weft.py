# gdb commands for weft fibers: list them, print a suspended fiber's backtrace,
# look at its frames, and write core files that keep the fiber stacks.
#
#   (gdb) source debug/weft.py        (or <prefix>/share/weft/gdb/weft.py)
#   (gdb) weft fibers                     every fiber: id, state, group, where
#   (gdb) weft bt 42                      backtrace of fiber 42
#   (gdb) weft select 42                  frames #1.. of this thread are fiber 42's
#   (gdb) weft gcore core.app             gcore, plus the stacks gcore cannot read
#   (gdb) weft restore-core fixed.core    this core with hibernated stacks in place
#
# Works on a live process (started under gdb or attached) and on a core file,
# with or without debug information in the program: everything comes from two
# symbols of the runtime, `weft_debug_stacks` (a list of every mapped fiber
# stack) and `weft_debug_layout` (field offsets). x86_64 only: a suspended
# fiber's registers are read where Boost.Context's jump_fcontext saved them.
# States are snapshots written by the runtime without synchronisation: on a
# process stopped in the middle of a switch a fiber may show a stale state.
#
# A hibernated fiber (runtime/scheduling_group/hibernator.h) has no stack pages:
# its control block and frames are in a heap copy that its stack record points
# to. Its id and state are read from the copy; to show its frames in a live
# process, the commands first have the runtime put its stack back by calling
# weft_debug_wake_hibernated, the same thing any touch of the stack would do.
# A core file has only the copy; `weft restore-core` writes one with the copies
# put back in place.
#
# This file loads the modules of the directory weft_gdb/ beside it, which hold
# the commands: install or copy weft.py together with that directory.

import importlib.util
import os
import sys

import gdb


def _weft_gdb_directory():
    """The weft_gdb directory next to this file. gdb runs a sourced file with its
    path as the code's file name (and as __file__ while it runs, in gdb 13); a
    symbolic link to weft.py is followed when the directory is not beside it."""
    scripts = (sys._getframe(0).f_code.co_filename, globals().get("__file__"))
    for script in scripts:
        if not script:
            continue
        for path in (os.path.abspath(script), os.path.realpath(script)):
            directory = os.path.join(os.path.dirname(path), "weft_gdb")
            if os.path.isfile(os.path.join(directory, "__init__.py")):
                return directory
    raise gdb.GdbError("weft: no weft_gdb directory beside %s: install or copy weft.py "
                       "together with its weft_gdb directory" % scripts[0])


def _load_weft_gdb():
    """Imports weft_gdb afresh from beside this file and registers its commands:
    sourcing weft.py again (another copy, or after an edit) replaces them, as
    it replaced the single-file script's."""
    directory = _weft_gdb_directory()
    for name in [name for name in sys.modules
                 if name == "weft_gdb" or name.startswith("weft_gdb.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        "weft_gdb", os.path.join(directory, "__init__.py"),
        submodule_search_locations=[directory])
    package = importlib.util.module_from_spec(spec)
    sys.modules["weft_gdb"] = package
    # No __pycache__ left in the source tree or the installed share/weft/gdb.
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules["weft_gdb"]
        raise
    finally:
        sys.dont_write_bytecode = write_bytecode
    package.register()


_load_weft_gdb()
