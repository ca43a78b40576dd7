# Run by debug/check_gdb.sh inside `gdb -batch`, after debug/weft.py:
# checks what the weft commands print about weft_gdb_target (gdb_target.cc).
#
# WEFT_GDB_CHECK_MODE says what gdb was given:
#   live         the program, not started yet: runs it to weft_gdb_target_ready,
#                checks, writes $WEFT_GDB_CHECK_CORE with `weft gcore` and
#                $WEFT_GDB_CHECK_PLAIN_CORE with plain `gcore`, lets it finish
#   attach       a process of `weft_gdb_target --attach` ($WEFT_GDB_CHECK_PID),
#                attached: checks, then lets it finish and detaches
#   core         a core written by `weft gcore`
#   kernel-core  a core the kernel wrote when `weft_gdb_target --abort` aborted
#   plain-core   a core written by plain gcore: either complete, or the commands
#                say that the fiber stacks are missing
#   no-runtime   a program without weft, stopped at its first instruction
# Quits gdb with status 0 when every check passed, 1 otherwise.

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


def check_fibers(fiber_ids, live):
    output = run("weft fibers")
    lines = output.splitlines()
    check("weft: warning" not in output,
          "weft fibers: no warning (jump_fcontext's register layout was understood)", output)
    for name, function, via in PARKED:
        pattern = r"^\s*%d\s+parked\s+0\s+%s at gdb_target\.cc:\d+ \(in %s\)$" % (
            fiber_ids[name], re.escape(function), re.escape(via))
        check(any(re.match(pattern, line) for line in lines),
              "weft fibers: the %s is parked in %s via %s" % (name, function, via), output)
    thread = r"on thread \d+ \(LWP \d+"
    if live:
        thread += r', "weft-g1-w0"\)'
    check(any(re.match(r"^\s*%d\s+running\s+1\s+%s" % (fiber_ids["busy"], thread), line)
              for line in lines), "weft fibers: the busy fiber runs on group 1's worker", output)
    check(any(re.match(r"^\s*%d\s+ready\s+1\s+not started$" % fiber_ids["not_started"], line)
              for line in lines), "weft fibers: a ready fiber that has not started", output)
    check(re.search(r"^7 fibers: 1 ready, 1 running, 5 parked; \d+ pooled stacks?$", output,
                    re.M), "weft fibers: the summary counts 7 fibers by state", output)

    output = run("weft fibers --state running")
    check(len(output.splitlines()) == 3 and re.search(r"^\s*%d\s+running" % fiber_ids["busy"],
                                                      output, re.M),
          "weft fibers --state running lists the busy fiber only", output)
    output = run("weft fibers --group 1 --no-where")
    check(len(output.splitlines()) == 4, "weft fibers --group 1 lists 2 fibers", output)
    output = run("weft fibers --limit 2 --no-where")
    check("... 5 more not listed" in output, "weft fibers --limit 2 leaves 5 out", output)


def check_backtraces(fiber_ids):
    for name, function, via in PARKED:
        fiber_id = fiber_ids[name]
        output = run("weft bt %d" % fiber_id)
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
                                       r"reads version 1")
    run("set var *(unsigned int *) &weft_debug_layout = 1")


def check_process(live):
    stopped_in = gdb.selected_frame().name()
    fiber_ids = ids()
    check_fibers(fiber_ids, live)
    check_backtraces(fiber_ids)
    check_select(fiber_ids)
    check(gdb.selected_frame().name() == stopped_in, "the commands keep the selected frame")


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
        run("break weft_gdb_target_ready")
        run("run")
        if not check(gdb.selected_frame().name() == "weft_gdb_target_ready",
                     "the program stops at weft_gdb_target_ready"):
            return
        check_process(live=True)
        check_layout_version()
        output = run("weft gcore %s" % os.environ["WEFT_GDB_CHECK_CORE"])
        check("Saved corefile" in output, "weft gcore writes a core", output)
        run("gcore %s" % os.environ["WEFT_GDB_CHECK_PLAIN_CORE"])
        run("delete")
        run("continue")
        exit_code = gdb.convenience_variable("_exitcode")
        check(exit_code is not None and int(exit_code) == 0,
              "the program finishes cleanly after being debugged (exit code %s)" % exit_code)
    elif mode == "attach":
        if not check(attach_settled(int(os.environ["WEFT_GDB_CHECK_PID"])),
                     "the attached program has every fiber in its state"):
            return
        check_process(live=True)
        run("set var weft_gdb_target_release = 1")
        run("detach")
    elif mode in ("core", "kernel-core"):
        check_process(live=False)
        run_expecting_error("weft gcore x", r"needs a live process")
    elif mode == "plain-core":
        try:
            run("weft fibers")
        except gdb.error as e:
            check("the core file lacks the fiber stacks" in str(e) and "weft gcore" in str(e),
                  "weft fibers explains that the core lacks the fiber stacks", str(e))
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
