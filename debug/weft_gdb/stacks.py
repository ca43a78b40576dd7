# Walking a suspended fiber's stack: the unwinder that shows a fiber's frames
# as the callers of a thread's innermost function, the frames from there to
# the fiber's entry, where a fiber waits (for `weft fibers`), and which thread
# runs a running fiber.

import contextlib
import os
import re

import gdb
import gdb.unwinder

from .common import Error, restore_level, selected_level

_CONTEXT_FUNCTIONS = ("jump_fcontext", "make_fcontext", "ontop_fcontext")
_LIBRARY_PREFIXES = ("std::", "__gnu_cxx::", "boost::", "__cxxabiv1::")


def thread_label(thread):
    label = "thread %d (LWP %d" % (thread.num, thread.ptid[1])
    if thread.name:
        label += ', "%s"' % thread.name
    return label + ")"


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _FiberUnwinder(gdb.unwinder.Unwinder):
    """While a fiber is selected for a thread, the caller of that thread's
    innermost function is the fiber's suspended context: frames #1 and up are
    the fiber's (#2 and up when the innermost function shows as two frames, one
    inlined into the other, and so on). Works on core files, where registers
    cannot be written."""

    def __init__(self):
        super().__init__("weft fibers")
        # (thread ptid, fiber, saved registers, how many frames are the thread's)
        self.selection = None

    def __call__(self, pending_frame):
        if self.selection is None or pending_frame.level() != self.selection[3] - 1:
            return None
        ptid, fiber, registers, _ = self.selection
        thread = gdb.selected_thread()
        if thread is None or thread.ptid != ptid:
            return None
        pc = pending_frame.read_register("rip")
        sp_type = pending_frame.read_register("rsp").type
        # An id below the fiber's own frames keeps gdb's frame-order check happy.
        info = pending_frame.create_unwind_info(
            _FrameId(gdb.Value(fiber.fctx).cast(sp_type), pc))
        for name, value in registers.items():
            register_type = pending_frame.read_register(name).type
            info.add_saved_register(name, gdb.Value(value).cast(register_type))
        return info


# The one unwinder, registered with gdb by weft_gdb.register().
unwinder = _FiberUnwinder()


def clear_selection(*_):
    """Ends a `weft select`; called on gdb's cont and exited events too."""
    if unwinder.selection is not None:
        unwinder.selection = None
        gdb.invalidate_cached_frames()


def own_frames():
    """How many frames the selected thread's innermost function takes: gdb shows
    each function inlined into it as a frame of its own, unwound from the same
    registers (and asks unwinders about the last one only)."""
    frame, count = gdb.newest_frame(), 1
    while frame.type() == gdb.INLINE_FRAME and frame.older() is not None:
        frame, count = frame.older(), count + 1
    return count


@contextlib.contextmanager
def fiber_frames(runtime, fiber):
    """Within the block, the frames of the selected thread after its own (the
    value of the block, see own_frames) are the fiber's."""
    previous = unwinder.selection
    level = selected_level()
    own = own_frames()
    unwinder.selection = (gdb.selected_thread().ptid, fiber, runtime.saved_registers(fiber),
                          own)
    gdb.invalidate_cached_frames()
    try:
        yield own
    finally:
        unwinder.selection = previous
        gdb.invalidate_cached_frames()
        restore_level(level)


class _Frame:
    __slots__ = ("name", "short", "file", "line", "pc")


def _short_name(name):
    """'void ns::f<int>(int)' -> 'ns::f<int>': no return type (which demangled
    template functions have) and no parameters."""
    depth, i, start = 0, 0, 0
    while i < len(name):
        for keep in ("(anonymous namespace)", "operator()", "operator "):
            if name.startswith(keep, i):
                i += len(keep)
                break
        else:
            c = name[i]
            if c in "<{":
                depth += 1
            elif c in ">}":
                depth -= 1
            elif c == "(" and depth == 0:
                return name[start:i]
            elif c == " " and depth == 0:
                start = i + 1
            i += 1
    return name[start:]


def _without_templates(name):
    previous = None
    while previous != name:
        previous, name = name, re.sub(r"<[^<>]*>", "", name)
    return name


def fiber_stack_frames(limit, skip):
    """The frames of the selected thread up to the fiber's entry (Boost.Context's
    trampoline in make_fcontext, not included), without the `skip` innermost
    ones: the thread's own frames shown below a fiber's."""
    frames = []
    try:
        frame = gdb.newest_frame()
        for _ in range(skip):
            frame = frame.older() if frame is not None else None
        while frame is not None and len(frames) < limit:
            entry = _Frame()
            entry.pc = frame.pc()
            entry.name = frame.name()
            entry.short = _short_name(entry.name) if entry.name else None
            if entry.short == "make_fcontext":
                break
            sal = frame.find_sal()
            entry.file = sal.symtab.filename if sal.symtab else None
            entry.line = sal.line
            frames.append(entry)
            frame = frame.older()
    except gdb.error:
        pass
    return frames


def _where(frames):
    """The innermost frame outside weft and the libraries, and the outermost weft
    function (not weft::detail) called from it, e.g. FiberMutex::lock. Without
    such a frame (user code inlined into weft's templates, no debug information),
    the function FiberMain called, whose name carries the user's callable."""
    via = None
    for frame in frames:
        name = frame.short
        if name is None or name in _CONTEXT_FUNCTIONS:
            continue
        if name.startswith("weft::"):
            if not name.startswith("weft::detail::"):
                via = _without_templates(name)
            continue
        if name.startswith(_LIBRARY_PREFIXES):
            continue
        return frame, via
    for inner, outer in zip(frames, frames[1:]):
        if outer.short == "weft::detail::FiberMain":
            return inner, via
    return (frames[0] if frames else None), via


def _describe_frame(frame):
    if frame is None:
        return "?"
    text = frame.short or "0x%x" % frame.pc
    if frame.file:
        text += " at %s:%d" % (os.path.basename(frame.file), frame.line)
    return text


def running_threads(inferior):
    """[(thread, stack pointer)] of every stopped thread of the inferior."""
    result = []
    selected = gdb.selected_thread()
    level = selected_level()
    try:
        for thread in inferior.threads():
            if not thread.is_valid() or thread.is_running():
                continue
            thread.switch()
            try:
                result.append((thread, int(gdb.newest_frame().read_register("rsp"))))
            except gdb.error:
                pass
    finally:
        selected.switch()
        restore_level(level)
    return result


@contextlib.contextmanager
def on_thread(thread):
    selected = gdb.selected_thread()
    level = selected_level()
    thread.switch()
    try:
        yield
    finally:
        selected.switch()
        restore_level(level)


def thread_of(fiber, threads):
    for thread, sp in threads:
        if fiber.contains(sp):
            return thread
    return None


def suspended_where(runtime, fiber):
    if fiber.fctx == 0:
        return "switching (registers not saved yet)"
    if not fiber.on_stack:
        # Listing does not wake fibers: a process may have a great many.
        if runtime.core:
            return "? (hibernated: its frames are not in this core; see `weft bt %d`)" \
                % fiber.id
        return "? (hibernated: `weft bt %d` wakes it)" % fiber.id
    try:
        with fiber_frames(runtime, fiber) as own:
            frames = fiber_stack_frames(64, own)
    except Error as e:
        return "? (%s)" % e
    if not frames:
        return "not started"
    frame, via = _where(frames)
    text = _describe_frame(frame)
    return text + (" (in %s)" % via if via and via != frame.short else "")
