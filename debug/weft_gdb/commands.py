# The `weft` prefix command and `weft fibers`, `weft bt`, `weft select`.

import re

import gdb

from .common import Error
from .layout import HIBERNATED, STATES, Runtime
from .stacks import (clear_selection, fiber_frames, fiber_stack_frames, on_thread, own_frames,
                     running_threads, suspended_where, thread_label, thread_of, unwinder)


def _parse_options(argument, flags, valued):
    words = gdb.string_to_argv(argument)
    options, rest = {}, []
    i = 0
    while i < len(words):
        word = words[i]
        if word in flags:
            options[word] = True
        elif word in valued:
            if i + 1 == len(words):
                raise Error("weft: %s needs a value" % word)
            options[word] = words[i + 1]
            i += 1
        else:
            rest.append(word)
        i += 1
    return options, rest


def _integer(text, what):
    try:
        return int(text, 0)
    except ValueError:
        raise Error("weft: %s must be a number, not %r" % (what, text)) from None


class WeftCommand(gdb.Command):
    """Commands for weft fibers.

weft fibers [OPTIONS]   list fibers: id, state, group, where each one is
weft bt ID [BT-OPTIONS] backtrace of fiber ID
weft select [ID|none]   show fiber ID's frames as frames #1.. of this thread
weft gcore [FILE]       write a core file that keeps the fiber stacks
weft restore-core FILE  write this core with hibernated fibers' stacks in place"""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_STACK, prefix=True)

    def invoke(self, argument, from_tty):
        gdb.execute("help weft", from_tty)


class FibersCommand(gdb.Command):
    """List weft fibers: id, state, scheduling group, and where each one is.

Usage: weft fibers [--state STATE[,STATE...]] [--group N] [--limit N] [--no-where]

For a suspended fiber (parked, or ready after a yield) WHERE is the innermost
frame of its stack outside weft and the standard library, with the weft function
it waits in; for a running fiber, the thread that runs it. Finding where a fiber
is takes an unwind, so at most --limit fibers are listed (default 200, 0 for no
limit); a summary by state follows. STATE is ready, running, parked or exited,
or hibernated: parked fibers whose stack pages the runtime gave back (their
frames are in a copy; `weft bt ID` wakes one to show them, listing does not)."""

    def __init__(self):
        super().__init__("weft fibers", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        options, rest = _parse_options(argument, ("--no-where",),
                                       ("--state", "--group", "--limit"))
        if rest:
            raise Error("weft fibers: unexpected %r (see `help weft fibers`)" % rest[0])
        states = None
        if "--state" in options:
            states = set(options["--state"].split(","))
            unknown = states - set(STATES.values()) - {"hibernated"}
            if unknown:
                raise Error("weft fibers: unknown state %r" % sorted(unknown)[0])
        group = _integer(options["--group"], "--group") if "--group" in options else None
        limit = _integer(options.get("--limit", "200"), "--limit")
        where = "--no-where" not in options

        runtime = Runtime()
        threads = running_threads(runtime.inferior)
        counts, shown, hidden, hibernated = {}, 0, 0, 0
        rows = [("ID", "STATE", "GROUP", "WHERE")]
        for fiber in sorted(runtime.fibers(), key=lambda f: f.id):
            state = fiber.state_name()
            counts[state] = counts.get(state, 0) + 1
            names = {state}
            if fiber.sleep == HIBERNATED:
                hibernated += 1
                names.add("hibernated")
            if (states is not None and not names & states) or \
                    (group is not None and fiber.group != group):
                continue
            if limit and shown >= limit:
                hidden += 1
                continue
            shown += 1
            text = ""
            if fiber.state == 2:
                thread = thread_of(fiber, threads)
                text = "on " + thread_label(thread) if thread else "on no thread found"
            elif where and fiber.state in (1, 3):
                text = suspended_where(runtime, fiber)
            rows.append((fiber.id, fiber.state_text(),
                         "?" if fiber.group is None else fiber.group, text))
        width = max(8, max(len(row[1]) for row in rows))
        lines = ["%8s  %-*s %5s  %s" % (row[0], width, row[1], row[2], row[3])
                 for row in rows]
        total = sum(counts.values())
        summary = "%d fibers" % total
        if counts:
            parts = ["%d %s" % (counts[s], s) for s in STATES.values() if s in counts]
            if hibernated:  # only parked fibers hibernate
                parts = [p + (" (%d hibernated)" % hibernated if p.endswith(" parked") else "")
                         for p in parts]
            summary += ": " + ", ".join(parts)
        summary += "; %d pooled stack%s" % (runtime.pooled, "" if runtime.pooled == 1 else "s")
        if hidden:
            lines.append("... %d more not listed (--limit N shows more, 0 all)" % hidden)
        lines.append(summary)
        gdb.write("\n".join(lines) + "\n")


class BacktraceCommand(gdb.Command):
    """Backtrace of a weft fiber.

Usage: weft bt ID [BACKTRACE-OPTIONS]

For a suspended fiber, prints its frames from where it switched away down to its
entry; options such as -full are passed on to `backtrace`. For a running fiber,
prints which thread runs it and that thread's backtrace. A hibernated fiber of a
live process is woken first (the runtime puts its stack back, as the fiber's next
touch would); in a core file its frames are only in a copy, see `weft
restore-core`."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            raise Error("usage: weft bt ID [BACKTRACE-OPTIONS]")
        fiber_id = _integer(words[0], "the fiber id")
        options = " ".join(words[1:])
        runtime = Runtime()
        fiber = runtime.find(fiber_id)
        header = "fiber %d (%s, group %s)" % (fiber.id, fiber.state_name(),
                                             "?" if fiber.group is None else fiber.group)
        if fiber.state == 4:
            raise Error(_exited_message(fiber))
        if fiber.state == 2 or fiber.fctx == 0:
            thread = thread_of(fiber, running_threads(runtime.inferior))
            if thread is None:
                raise Error("weft: %s has no saved registers and no thread runs on its "
                            "stack; it is between two switches" % header)
            gdb.write("%s runs on %s; that thread's backtrace:\n" % (header,
                                                                   thread_label(thread)))
            with on_thread(thread):
                count = len(fiber_stack_frames(100000, 0))
                gdb.execute("backtrace %s %d" % (options, max(count, 1)))
            return
        if not fiber.on_stack:
            fiber = runtime.with_frames(fiber)
            header = header[:-1] + ", woken from hibernation)"
        with fiber_frames(runtime, fiber) as own:
            frames = fiber_stack_frames(100000, own)
            if not frames:
                gdb.write("%s has not started: no frames yet\n" % header)
                return
            text = gdb.execute("backtrace %s %d" % (options, len(frames) + own),
                               to_string=True)
        gdb.write(header + ":\n" + _drop_thread_frames(text, own))


def _exited_message(fiber):
    return ("weft: fiber %d has exited and has no frames (it is kept until its Fiber "
            "handle is joined, or until its last switch is over)" % fiber.id)


def _drop_thread_frames(text, own):
    """Removes frames #0 to #own-1 (the thread's own) and numbers the rest from #0."""
    out, skipping = [], False
    for line in text.splitlines(True):
        m = re.match(r"#(\d+)(\s+)", line)
        if m:
            level = int(m.group(1))
            skipping = level < own
            if not skipping:
                field = m.group(1) + m.group(2)
                line = "#" + str(level - own).ljust(len(field)) + line[m.end():]
        elif line.startswith("(More stack frames follow"):
            continue
        if not skipping:
            out.append(line)
    return "".join(out)


class SelectCommand(gdb.Command):
    """Show a suspended weft fiber's frames in the selected thread.

Usage: weft select ID | weft select none | weft select

After `weft select ID`, frame #0 of the selected thread stays the thread's own and
frames #1 and up are fiber ID's, so `bt`, `frame N`, `up`, `info locals` and
`print` work in the fiber (#2 and up if the thread's innermost function shows as
two frames, one inlined into it, and so on). `weft select none`, switching
threads or resuming the program ends it. Without an argument, shows the
selection. A hibernated fiber of a live process is woken first, as for `weft bt`."""

    def __init__(self):
        super().__init__("weft select", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            if unwinder.selection is None:
                gdb.write("no fiber selected\n")
            else:
                ptid, fiber, _, own = unwinder.selection
                gdb.write("fiber %d is shown as frames #%d.. of LWP %d\n"
                          % (fiber.id, own, ptid[1]))
            return
        if words[0] == "none":
            clear_selection()
            return
        runtime = Runtime()
        fiber = runtime.find(_integer(words[0], "the fiber id"))
        if fiber.state == 4:
            raise Error(_exited_message(fiber))
        if fiber.state == 2 or fiber.fctx == 0:
            raise Error("weft: fiber %d is running and has no saved frames; `weft bt %d` "
                        "says which thread runs it" % (fiber.id, fiber.id))
        state = fiber.state_name()
        if not fiber.on_stack:
            # Before the selection: the call that wakes it resumes the thread,
            # which ends any selection.
            fiber = runtime.with_frames(fiber)
            state += ", woken from hibernation"
        own = own_frames()
        unwinder.selection = (gdb.selected_thread().ptid, fiber,
                              runtime.saved_registers(fiber), own)
        gdb.invalidate_cached_frames()
        gdb.write("fiber %d (%s): frames #%d and up of this thread are the fiber's; %s the "
                  "thread's own. `weft select none` ends this.\n"
                  % (fiber.id, state, own,
                     "frame #0 is" if own == 1 else "frames #0 to #%d are" % (own - 1)))
        gdb.execute("frame %d" % own)
