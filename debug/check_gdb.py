# Run by debug/check_gdb.sh inside `gdb -batch`, after debug/weft.py:
# checks what the weft commands print about weft_gdb_target (gdb_target.cc).
#
# WEFT_GDB_CHECK_MODE says what gdb was given:
#   live         the program, not started yet: runs it to weft_gdb_target_parked,
#                checks and notes each parked fiber's frames, goes on to
#                weft_gdb_target_ready (the fibers hibernated now), checks that
#                they are listed as hibernated, writes $WEFT_GDB_CHECK_PLAIN_CORE
#                with plain `gcore`, checks that `weft bt` wakes them and shows
#                the frames noted, writes $WEFT_GDB_CHECK_CORE with `weft gcore`
#                (which wakes the last one), lets the program finish
#   attach       a process of `weft_gdb_target --attach` ($WEFT_GDB_CHECK_PID),
#                attached with its fibers hibernated: checks, then lets it finish
#                and detaches
#   core         a core written by `weft gcore`
#   kernel-core  a core the kernel wrote when `weft_gdb_target --abort` aborted,
#                its fibers hibernated: checks what the commands say of them,
#                writes $WEFT_GDB_CHECK_RESTORED_CORE with `weft restore-core`,
#                loads it and checks it as a complete core
#   plain-core   a core written by plain gcore: either complete, or the commands
#                say that the fiber stacks are missing
#   no-runtime   a program without weft, stopped at its first instruction
# When the program runs without hibernation (weft_gdb_target_hibernation is 0:
# no userfaultfd here, or --no_hibernation), nothing is hibernated and every
# mode checks what it checks of a program that never hibernates.
# Quits gdb with status 0 when every check passed, 1 otherwise.

import contextlib
import os
import re
import time
import traceback

import gdb

mode = os.environ["WEFT_GDB_CHECK_MODE"]
failures = []
passed = [0]

# Fiber (field of weft_gdb_target_ids), the function it parks in, and the weft
# function `weft fibers` names as what it waits in.
PARKED = [
    ("mutex_waiter", "gdb_target::ParkedOnFiberMutex", "weft::FiberMutex::lock"),
    ("sleeper", "gdb_target::ParkedInSleepFor", "weft::this_fiber::SleepFor"),
    ("condition_waiter", "gdb_target::ParkedOnConditionVariable",
     "weft::FiberConditionVariable::wait"),
    ("latch_waiter", "gdb_target::ParkedOnFiberLatch", "weft::FiberLatch::Wait"),
    ("joiner", "gdb_target::ParkedInJoin", "weft::Fiber::Join"),
]


def check(condition, what, output=""):
    if condition:
        passed[0] += 1
        return True
    failures.append(what)
    gdb.write("check_gdb: FAILED (%s): %s\n" % (mode, what))
    if output:
        gdb.write("---- output ----\n%s\n----------------\n" % output.rstrip())
    return False


def run(command):
    return gdb.execute(command, to_string=True)


def run_expecting_error(command, pattern):
    try:
        output = run(command)
    except gdb.error as e:
        check(re.search(pattern, str(e)), "`%s` fails with /%s/" % (command, pattern), str(e))
        return
    check(False, "`%s` fails with /%s/" % (command, pattern), output)


def ids():
    value = gdb.parse_and_eval("weft_gdb_target_ids")
    names = [name for name, _, _ in PARKED] + ["busy", "not_started"]
    return {name: int(value[name]) for name in names}


def hibernation():
    """Whether the program hibernated its parked fibers."""
    return int(gdb.parse_and_eval("weft_gdb_target_hibernation")) == 1


def parked_names():
    return [name for name, _, _ in PARKED]


def check_fibers(fiber_ids, live, hibernated=()):
    """`weft fibers` with every fiber in its place; the names in `hibernated`
    are parked fibers listed as hibernated whose frames are readable all the
    same (a core written by `weft restore-core`)."""
    output = run("weft fibers")
    lines = output.splitlines()
    check("weft: warning" not in output,
          "weft fibers: no warning (jump_fcontext's register layout was understood)", output)
    for name, function, via in PARKED:
        state = r"parked \(hibernated\)" if name in hibernated else r"parked"
        pattern = r"^\s*%d\s+%s\s+0\s+%s at gdb_target\.cc:\d+ \(in %s\)$" % (
            fiber_ids[name], state, re.escape(function), re.escape(via))
        check(any(re.match(pattern, line) for line in lines),
              "weft fibers: the %s is %s in %s via %s" % (
                  name, state.replace("\\", ""), function, via), output)
    thread = r"on thread \d+ \(LWP \d+"
    if live:
        thread += r', "weft-g1-w0"\)'
    check(any(re.match(r"^\s*%d\s+running\s+1\s+%s" % (fiber_ids["busy"], thread), line)
              for line in lines), "weft fibers: the busy fiber runs on group 1's worker", output)
    check(any(re.match(r"^\s*%d\s+ready\s+1\s+not started$" % fiber_ids["not_started"], line)
              for line in lines), "weft fibers: a ready fiber that has not started", output)
    parked = "5 parked" + (" \\(%d hibernated\\)" % len(hibernated) if hibernated else "")
    check(re.search(r"^7 fibers: 1 ready, 1 running, %s; \d+ pooled stacks?$" % parked, output,
                    re.M), "weft fibers: the summary counts 7 fibers by state", output)

    output = run("weft fibers --state running")
    check(len(output.splitlines()) == 3 and re.search(r"^\s*%d\s+running" % fiber_ids["busy"],
                                                      output, re.M),
          "weft fibers --state running lists the busy fiber only", output)
    output = run("weft fibers --group 1 --no-where")
    check(len(output.splitlines()) == 4, "weft fibers --group 1 lists 2 fibers", output)
    output = run("weft fibers --limit 2 --no-where")
    check("... 5 more not listed" in output, "weft fibers --limit 2 leaves 5 out", output)


def check_hibernated_fibers(fiber_ids, live, names):
    """`weft fibers` while the parked fibers `names` are hibernated, their frames
    not readable: in a live process until `weft bt` wakes them, in a core at all."""
    output = run("weft fibers")
    lines = output.splitlines()
    for name in names:
        fiber_id = fiber_ids[name]
        if live:
            where = r"\? \(hibernated: `weft bt %d` wakes it\)" % fiber_id
        else:
            where = r"\? \(hibernated: its frames are not in this core; see `weft bt %d`\)" \
                % fiber_id
        check(any(re.match(r"^\s*%d\s+parked \(hibernated\)\s+0\s+%s$" % (fiber_id, where),
                           line) for line in lines),
              "weft fibers: the %s is listed as hibernated, without waking it" % name, output)
    check(re.search(r"^7 fibers: 1 ready, 1 running, 5 parked \(%d hibernated\); " % len(names),
                    output, re.M), "weft fibers: the summary counts the hibernated fibers",
          output)
    output = run("weft fibers --state hibernated --no-where")
    listed = sorted(int(line.split()[0]) for line in output.splitlines()[1:-1])
    check(listed == sorted(fiber_ids[name] for name in names),
          "weft fibers --state hibernated lists the hibernated fibers only", output)


def frame_lines(output):
    return [line for line in output.splitlines() if line.startswith("#")]


def check_backtraces(fiber_ids):
    """`weft bt` of every fiber. Returns the output for each parked fiber."""
    outputs = {}
    for name, function, via in PARKED:
        fiber_id = fiber_ids[name]
        output = run("weft bt %d" % fiber_id)
        outputs[name] = output
        levels = [int(n) for n in re.findall(r"^#(\d+)\s", output, re.M)]
        check(output.startswith("fiber %d (parked, group 0):\n" % fiber_id),
              "weft bt %d: names the fiber" % fiber_id, output)
        check(levels == list(range(len(levels))) and len(levels) >= 3,
              "weft bt %d: frames numbered from #0" % fiber_id, output)
        check(re.search(r"^#\d+ .*%s \(\) at .*gdb_target\.cc:\d+$" % re.escape(function),
                        output, re.M),
              "weft bt %d: shows %s with its file and line" % (fiber_id, function), output)
        check(via in output and "weft::detail::FiberMain" in output,
              "weft bt %d: shows %s and FiberMain" % (fiber_id, via), output)
        check("make_fcontext" not in output and "??" not in output,
              "weft bt %d: stops at the fiber's entry" % fiber_id, output)

    output = run("weft bt %d -full" % fiber_ids["condition_waiter"])
    check(re.search(r"^\s+lock = ", output, re.M),
          "weft bt ID -full shows the locals of the fiber's frames", output)

    busy = fiber_ids["busy"]
    output = run("weft bt %d" % busy)
    check(re.match(r"fiber %d \(running, group 1\) runs on thread \d+ \(LWP \d+" % busy, output)
          and "gdb_target::RunningBusyLoop" in output and "??" not in output,
          "weft bt of the running fiber shows its thread's backtrace", output)

    output = run("weft bt %d" % fiber_ids["not_started"])
    check(output == "fiber %d (ready, group 1) has not started: no frames yet\n"
          % fiber_ids["not_started"], "weft bt of a fiber that has not started", output)

    run_expecting_error("weft bt 999999999", r"no fiber with id 999999999")
    run_expecting_error("weft bt", r"usage: weft bt ID")
    run_expecting_error("weft select %d" % busy, r"is running and has no saved frames")
    return outputs


def check_select(fiber_ids):
    before = run("bt 1")
    fiber_id = fiber_ids["mutex_waiter"]
    run("weft select %d" % fiber_id)
    output = run("bt")
    check(re.search(r"^#\d+ .*gdb_target::ParkedOnFiberMutex \(\)", output, re.M),
          "after weft select, bt shows the fiber's frames", output)
    frame = [n for n, line in enumerate(output.splitlines())
             if "ParkedOnFiberMutex" in line][0]
    run("frame %d" % frame)
    check(gdb.selected_frame().name() == "gdb_target::ParkedOnFiberMutex",
          "frame N selects a frame of the fiber", output)
    output = run("weft select")
    check("fiber %d is shown" % fiber_id in output, "weft select shows the selection", output)
    run("weft select none")
    output = run("bt 1")
    check(output == before, "weft select none restores the thread's own frames",
          before + "\n" + output)


def check_layout_version():
    run("set var *(unsigned int *) &weft_debug_layout = 99")
    run_expecting_error("weft fibers", r"weft_debug_layout is version 99, this weft.py "
                                       r"reads version 2")
    run("set var *(unsigned int *) &weft_debug_layout = 2")


def inlined_waiter_thread():
    """The program's thread stopped in code inlined into InlinedWaiterThread:
    its innermost function shows as several frames."""
    selected = gdb.selected_thread()
    found = None
    try:
        for thread in gdb.selected_inferior().threads():
            thread.switch()
            frame, names = gdb.newest_frame(), []
            while frame is not None and len(names) < 8:
                names.append(frame.name())
                frame = frame.older()
            if "gdb_target::InlinedWaiterThread" in names:
                found = thread
    finally:
        selected.switch()
    return found


@contextlib.contextmanager
def on_thread(thread):
    selected = gdb.selected_thread()
    run("thread %d" % thread.num)
    try:
        yield
    finally:
        run("thread %d" % selected.num)


def check_from_inlined_frames(fiber_ids, outputs):
    """`weft bt` and `weft select` from a thread whose innermost function shows
    as several frames (gdb asks unwinders about the last of them only)."""
    thread = inlined_waiter_thread()
    if not check(thread is not None, "the thread waiting in inlined code is found"):
        return
    name = "mutex_waiter"
    with on_thread(thread):
        check(gdb.newest_frame().type() == gdb.INLINE_FRAME,
              "the thread's innermost frame is an inlined one", run("bt 3"))
        before = run("bt 4")
        output = run("weft bt %d" % fiber_ids[name])
        check(frame_lines(output) == frame_lines(outputs[name]),
              "weft bt from a thread stopped in inlined code shows the fiber's frames",
              outputs[name] + "\n" + output)
        output = run("weft select %d" % fiber_ids[name])
        own = [int(n) for n in re.findall(r"frames #(\d+) and up", output)]
        check(own and own[0] > 1, "weft select says how many frames are the thread's", output)
        output = run("bt")
        lines = frame_lines(output)
        check(own and len(lines) > own[0] and "InlinedWaiterThread" in lines[own[0] - 1]
              and any("gdb_target::ParkedOnFiberMutex ()" in line for line in lines[own[0]:]),
              "after weft select, bt shows the thread's inlined frames, then the fiber's",
              output)
        run("weft select none")
        check(run("bt 4") == before, "weft select none restores the thread's own frames",
              before + "\n" + run("bt 4"))


def check_process(live, hibernated=()):
    """Every command on fibers in their places, their frames readable."""
    stopped_in = gdb.selected_frame().name()
    fiber_ids = ids()
    check_fibers(fiber_ids, live, hibernated)
    outputs = check_backtraces(fiber_ids)
    check_select(fiber_ids)
    check_from_inlined_frames(fiber_ids, outputs)
    check(gdb.selected_frame().name() == stopped_in, "the commands keep the selected frame")
    return outputs


def check_waking(fiber_ids, names, frames_before=None):
    """In a live process whose parked fibers `names` are hibernated: `weft bt`
    wakes each and shows its frames (the same as `frames_before`, noted before it
    hibernated), and leaves the thread it calls the runtime on as it was. The
    last one is woken from the thread waiting in a system call in inlined code,
    which must go on waiting (the program finishes only if it does)."""
    thread = inlined_waiter_thread()
    if len(names) > 1 and check(thread is not None,
                                "the thread waiting in inlined code is found"):
        with on_thread(thread):
            check_waking(fiber_ids, names[-1:], frames_before)
        names = names[:-1]
    registers = run("info all-registers")
    stopped_in = gdb.selected_frame().name()
    for name, function, via in PARKED:
        if name not in names:
            continue
        fiber_id = fiber_ids[name]
        output = run("weft bt %d" % fiber_id)
        check(output.startswith("fiber %d (parked, group 0, woken from hibernation):\n"
                                % fiber_id), "weft bt %d wakes the hibernated %s" % (
                                    fiber_id, name), output)
        check(re.search(r"^#\d+ .*%s \(\) at .*gdb_target\.cc:\d+$" % re.escape(function),
                        output, re.M) and via in output and "??" not in output,
              "weft bt %d: shows the woken fiber's frames" % fiber_id, output)
        if frames_before is not None:
            check(frame_lines(output) == frame_lines(frames_before[name]),
                  "weft bt %d: the same frames as before the %s hibernated" % (fiber_id, name),
                  frames_before[name] + "\n" + output)
    check(run("info all-registers") == registers,
          "waking fibers leaves every register of the thread as it was (vector ones too)")
    check(gdb.selected_frame().name() == stopped_in,
          "waking fibers keeps the selected frame")
    output = run("weft fibers --state hibernated --no-where")
    check(not any(re.match(r"^\s*%d\s" % fiber_ids[name], line)
                  for name in names for line in output.splitlines()),
          "the woken fibers are no longer listed as hibernated", output)


def check_hibernated_in_core(fiber_ids):
    """In a core written while the parked fibers were hibernated: what the
    commands say of them (their frames are only in the copies)."""
    check_hibernated_fibers(fiber_ids, False, parked_names())
    for name in parked_names():
        fiber_id = fiber_ids[name]
        run_expecting_error("weft bt %d" % fiber_id,
                            r"fiber %d was hibernated when this core was written: .* They are "
                            r"in the copy at 0x[0-9a-f]+ \(\d+ bytes, the stack's "
                            r"0x[0-9a-f]+-0x[0-9a-f]+\)\. `weft restore-core FILE`" % fiber_id)
    run_expecting_error("weft select %d" % fiber_ids["mutex_waiter"],
                        r"was hibernated when this core was written")
    output = run("weft bt %d" % fiber_ids["not_started"])
    check("has not started" in output, "weft bt of an awake fiber in the same core", output)


def attach_settled(pid):
    """Attaches until the program is caught with every fiber in its state."""
    deadline = time.monotonic() + 120
    while True:
        if gdb.selected_inferior().pid == 0:
            run("attach %d" % pid)
        if int(gdb.parse_and_eval("weft_gdb_target_settled")) == 1:
            return True
        if time.monotonic() > deadline:
            return False
        run("detach")


def main():
    if mode == "live":
        run_expecting_error("weft fibers", r"no process")
        run("break weft_gdb_target_parked")
        run("break weft_gdb_target_ready")
        run("run" + (" --no_hibernation" if os.environ.get("WEFT_GDB_CHECK_NO_HIBERNATION")
                     else ""))
        if not check(gdb.selected_frame().name() == "weft_gdb_target_parked",
                     "the program stops at weft_gdb_target_parked"):
            return
        frames_before = check_process(live=True)
        run_expecting_error("weft restore-core x", r"needs a core file")
        run("continue")
        if not check(gdb.selected_frame().name() == "weft_gdb_target_ready",
                     "the program stops at weft_gdb_target_ready"):
            return
        fiber_ids = ids()
        if hibernation():
            check_hibernated_fibers(fiber_ids, True, parked_names())
        # A core with the fibers hibernated: gcore cannot read their stacks. The
        # plain-core mode checks what the commands say of it.
        run("gcore %s" % os.environ["WEFT_GDB_CHECK_PLAIN_CORE"])
        if hibernation():
            # The joiner stays hibernated, for `weft gcore` to wake.
            woken = [name for name in parked_names() if name != "joiner"]
            check_waking(fiber_ids, woken, frames_before)
        output = run("weft gcore %s" % os.environ["WEFT_GDB_CHECK_CORE"])
        check("Saved corefile" in output, "weft gcore writes a core", output)
        if hibernation():
            check("weft: woke 1 hibernated fiber, so that the core has its frames" in output,
                  "weft gcore wakes the hibernated fiber first", output)
        check_process(live=True)
        check_layout_version()
        run("delete")
        run("continue")
        exit_code = gdb.convenience_variable("_exitcode")
        check(exit_code is not None and int(exit_code) == 0,
              "the program finishes cleanly after being debugged (exit code %s)" % exit_code)
    elif mode == "attach":
        if not check(attach_settled(int(os.environ["WEFT_GDB_CHECK_PID"])),
                     "the attached program has every fiber in its state"):
            return
        if hibernation():
            fiber_ids = ids()
            check_hibernated_fibers(fiber_ids, True, parked_names())
            check_waking(fiber_ids, parked_names())
        check_process(live=True)
        run("set var weft_gdb_target_release = 1")
        run("detach")
    elif mode == "core":
        check_process(live=False)
        run_expecting_error("weft gcore x", r"needs a live process")
    elif mode == "kernel-core":
        hibernated = parked_names() if hibernation() else []
        if hibernated:
            check_hibernated_in_core(ids())
            restored = os.environ["WEFT_GDB_CHECK_RESTORED_CORE"]
            output = run("weft restore-core %s" % restored)
            check("weft: put the stacks of 5 hibernated fibers" in output,
                  "weft restore-core puts the 5 hibernated stacks back", output)
            run("core-file %s" % restored)
        check_process(live=False, hibernated=hibernated)
        run_expecting_error("weft gcore x", r"needs a live process")
    elif mode == "plain-core":
        try:
            run("weft fibers")
        except gdb.error as e:
            check("the core file lacks the fiber stacks" in str(e) and "weft gcore" in str(e),
                  "weft fibers explains that the core lacks the fiber stacks", str(e))
        else:
            if hibernation():
                check_hibernated_in_core(ids())
            else:
                check_process(live=False)
    elif mode == "no-runtime":
        run("starti")
        run_expecting_error("weft fibers", r"this program has no weft runtime")
    else:
        check(False, "unknown mode %r" % mode)


try:
    main()
except Exception:  # an unexpected error is a failure too, with its traceback
    check(False, "unexpected error:\n" + traceback.format_exc())
gdb.write("check_gdb: %s: %d checks passed, %d failed\n" % (mode, passed[0], len(failures)))
gdb.execute("quit %d" % (1 if failures else 0))
