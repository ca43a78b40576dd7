# gdb commands for weft fibers: list them, print a suspended fiber's backtrace,
# look at its frames, and write core files that keep the fiber stacks.
#
#   (gdb) source debug/weft.py        (or <prefix>/share/weft/gdb/weft.py)
#   (gdb) weft fibers                     every fiber: id, state, group, where
#   (gdb) weft bt 42                      backtrace of fiber 42
#   (gdb) weft select 42                  frames #1.. of this thread are fiber 42's
#   (gdb) weft gcore core.app             gcore, plus the stacks gcore cannot read
#
# Works on a live process (started under gdb or attached) and on a core file,
# with or without debug information in the program: everything comes from two
# symbols of the runtime, `weft_debug_stacks` (a list of every mapped fiber
# stack) and `weft_debug_layout` (field offsets). x86_64 only: a suspended
# fiber's registers are read where Boost.Context's jump_fcontext saved them.
# States are snapshots written by the runtime without synchronisation: on a
# process stopped in the middle of a switch a fiber may show a stale state.

import bisect
import contextlib
import os
import re
import struct

import gdb
import gdb.unwinder

_LAYOUT_VERSION = 1
_LAYOUT_FIELDS = ("version", "record_next", "record_fiber", "fiber_id", "fiber_state",
                  "fiber_group", "fiber_fctx", "fiber_stack_low", "fiber_stack_size",
                  "group_index")
_STATES = {1: "ready", 2: "running", 3: "parked", 4: "exited"}
_RECORD_SIZE = 64  # a StackRecord, at the top of each stack
_MAX_STACKS = 1 << 26  # more records than this means the list loops
_CONTEXT_FUNCTIONS = ("jump_fcontext", "make_fcontext", "ontop_fcontext")
_LIBRARY_PREFIXES = ("std::", "__gnu_cxx::", "boost::", "__cxxabiv1::")
# Boost 1.74's x86_64 SysV jump_fcontext: it moves rsp down 0x38 bytes (below
# the return address), stores mxcsr and the x87 control word at 0x0 and these
# registers above; the saved fcontext_t is that rsp.
_DEFAULT_SAVE_AREA = 0x38
_DEFAULT_SLOTS = {"r12": 0x8, "r13": 0x10, "r14": 0x18, "r15": 0x20, "rbx": 0x28,
                  "rbp": 0x30}


class _Error(gdb.GdbError):
    pass


def _address_of(name):
    try:
        return int(gdb.parse_and_eval("(unsigned long)&'%s'" % name))
    except gdb.error:
        return None


def _require_process():
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or not inferior.threads():
        raise _Error("weft: no process: run the program, attach to it or load a core file")
    arch = gdb.selected_frame().architecture().name()
    if arch != "i386:x86-64":
        raise _Error("weft: only x86_64 programs are supported (this one is %s)" % arch)
    return inferior


def _is_core(inferior):
    connection = getattr(inferior, "connection", None)
    return connection is not None and connection.type == "core"


def _thread_label(thread):
    label = "thread %d (LWP %d" % (thread.num, thread.ptid[1])
    if thread.name:
        label += ', "%s"' % thread.name
    return label + ")"


class _Fiber:
    __slots__ = ("record", "address", "id", "state", "group", "fctx", "stack_low",
                 "stack_size")

    def state_name(self):
        return _STATES.get(self.state, "state-%d" % self.state)

    def contains(self, address):
        return self.stack_low <= address < self.stack_low + self.stack_size


class _Runtime:
    """The weft runtime of the selected inferior, read through weft_debug_layout."""

    def __init__(self):
        self.inferior = _require_process()
        layout = _address_of("weft_debug_layout")
        self.head = _address_of("weft_debug_stacks")
        if layout is None or self.head is None:
            raise _Error("weft: this program has no weft runtime (no symbols "
                         "weft_debug_layout and weft_debug_stacks: it does not use weft, "
                         "or its symbol table was stripped)")
        version = struct.unpack("<I", self._read(layout, 4))[0]
        if version != _LAYOUT_VERSION:
            raise _Error("weft: the program's weft_debug_layout is version %d, this weft.py "
                         "reads version %d; load the weft.py installed with the program's weft"
                         % (version, _LAYOUT_VERSION))
        values = struct.unpack("<%dI" % len(_LAYOUT_FIELDS),
                               self._read(layout, 4 * len(_LAYOUT_FIELDS)))
        self.layout = dict(zip(_LAYOUT_FIELDS, values))
        fields = [(self.layout["fiber_id"], 8), (self.layout["fiber_state"], 1),
                  (self.layout["fiber_group"], 8), (self.layout["fiber_fctx"], 8),
                  (self.layout["fiber_stack_low"], 8), (self.layout["fiber_stack_size"], 8)]
        self.fiber_low = min(offset for offset, _ in fields)
        self.fiber_high = max(offset + size for offset, size in fields)
        self.pooled = 0
        self.records = []
        self._groups = {}

    def _read(self, address, size):
        try:
            return self.inferior.read_memory(address, size)
        except gdb.MemoryError:
            raise _Error("weft: cannot read %d bytes at 0x%x" % (size, address)) from None

    def _missing_stack(self, record, what):
        message = "weft: the list of fiber stacks is broken at 0x%x (%s)" % (record, what)
        if _is_core(self.inferior):
            message += (": the core file lacks the fiber stacks. gdb's gcore cannot read "
                        "stacks whose guard pages were installed with MADV_GUARD_INSTALL "
                        "(Linux 6.13 and later) and leaves them out; write cores with "
                        "`weft gcore`, or use one written by the kernel")
        raise _Error(message)

    def fibers(self, keep_records=False):
        """Yields every live fiber, walking weft_debug_stacks."""
        layout = self.layout
        read = self.inferior.read_memory
        next_offset, fiber_offset = layout["record_next"], layout["record_fiber"]
        before = max(512, self.fiber_high)
        record = struct.unpack("<Q", self._read(self.head + next_offset, 8))[0]
        self.pooled = 0
        count = 0
        while record != self.head:
            count += 1
            if record == 0 or record % _RECORD_SIZE or count > _MAX_STACKS:
                self._missing_stack(record, "a record at a bad address")
            if keep_records:
                self.records.append(record)
            # The fiber's control block sits just below the record: one read
            # usually gets both.
            try:
                block, base = read(record - before, before + _RECORD_SIZE), record - before
            except gdb.MemoryError:
                try:
                    block, base = read(record, _RECORD_SIZE), record
                except gdb.MemoryError:
                    self._missing_stack(record, "unreadable")
            at = record - base
            following = struct.unpack_from("<Q", block, at + next_offset)[0]
            address = struct.unpack_from("<Q", block, at + fiber_offset)[0]
            if following == 0:
                self._missing_stack(record, "the record reads as zeros")
            if address == 0:
                self.pooled += 1
            else:
                yield self._decode(record, address, block, base)
            record = following

    def _decode(self, record, address, block, base):
        layout = self.layout
        if base <= address + self.fiber_low and address + self.fiber_high <= base + len(block):
            data, at = block, address - base
        else:
            data = self._read(address + self.fiber_low, self.fiber_high - self.fiber_low)
            at = -self.fiber_low
        fiber = _Fiber()
        fiber.record = record
        fiber.address = address
        fiber.id = struct.unpack_from("<Q", data, at + layout["fiber_id"])[0]
        fiber.state = struct.unpack_from("<B", data, at + layout["fiber_state"])[0]
        group = struct.unpack_from("<Q", data, at + layout["fiber_group"])[0]
        fiber.fctx = struct.unpack_from("<Q", data, at + layout["fiber_fctx"])[0]
        fiber.stack_low = struct.unpack_from("<Q", data, at + layout["fiber_stack_low"])[0]
        fiber.stack_size = struct.unpack_from("<Q", data, at + layout["fiber_stack_size"])[0]
        fiber.group = self._group_index(group)
        return fiber

    def _group_index(self, group):
        if group not in self._groups:
            index = None
            if group != 0:
                try:
                    raw = self.inferior.read_memory(group + self.layout["group_index"], 8)
                    index = struct.unpack("<Q", raw)[0]
                except gdb.MemoryError:
                    pass
            self._groups[group] = index
        return self._groups[group]

    def find(self, fiber_id):
        for fiber in self.fibers():
            if fiber.id == fiber_id:
                return fiber
        raise _Error("weft: no fiber with id %d (see `weft fibers`)" % fiber_id)

    def saved_registers(self, fiber):
        """The registers jump_fcontext saved for a suspended fiber."""
        save_area, slots = _context_layout()
        raw = self._read(fiber.fctx, save_area + 8)
        registers = {name: struct.unpack_from("<Q", raw, offset)[0]
                     for name, offset in slots.items()}
        registers["rip"] = struct.unpack_from("<Q", raw, save_area)[0]
        registers["rsp"] = fiber.fctx + save_area + 8
        return registers


_context_layouts = {}


def _context_layout():
    """(save area size, {register: offset}) of jump_fcontext, read from its code."""
    address = _address_of("jump_fcontext")
    if address in _context_layouts:
        return _context_layouts[address]
    result, problem = (_DEFAULT_SAVE_AREA, _DEFAULT_SLOTS), None
    if address is None:
        problem = "no symbol jump_fcontext"
    else:
        try:
            found = _parse_jump_fcontext(address)
            if found is None:
                problem = "unexpected instructions"
            else:
                result = found
        except gdb.error as e:
            problem = str(e)
    if problem is not None:
        print("weft: warning: could not check where jump_fcontext saves registers (%s); "
              "assuming Boost 1.74's x86_64 layout" % problem)
    _context_layouts[address] = result
    return result


def _parse_jump_fcontext(address):
    """Follows jump_fcontext's prologue up to the instruction that copies rsp (the
    fcontext_t) into another register; AT&T or Intel syntax."""
    arch = gdb.selected_frame().architecture()
    depth, slots = 0, {}  # depth: how far rsp is below its value at entry
    for insn in arch.disassemble(address, count=24):
        text = re.sub(r"\s+", " ", insn["asm"].split("#")[0].strip())
        m = (re.fullmatch(r"lea -(0x[0-9a-f]+)\(%rsp\),%rsp", text)
             or re.fullmatch(r"lea rsp,\[rsp-(0x[0-9a-f]+)\]", text)
             or re.fullmatch(r"sub \$(0x[0-9a-f]+),%rsp", text)
             or re.fullmatch(r"sub rsp,(0x[0-9a-f]+)", text))
        if m:
            depth += int(m.group(1), 16)
            continue
        m = re.fullmatch(r"push %?(r\w+)", text)
        if m:
            depth += 8
            slots[m.group(1)] = -depth
            continue
        m = re.fullmatch(r"mov %(r\w+),(0x[0-9a-f]+)?\(%rsp\)", text)
        if m:
            slots[m.group(1)] = int(m.group(2) or "0", 16) - depth
            continue
        m = re.fullmatch(r"mov QWORD PTR \[rsp(?:\+(0x[0-9a-f]+))?\],(r\w+)", text)
        if m:
            slots[m.group(2)] = int(m.group(1) or "0", 16) - depth
            continue
        if re.fullmatch(r"mov %rsp,%r\w+|mov r\w+,rsp", text):
            wanted = ("rbx", "rbp", "r12", "r13", "r14", "r15")
            if depth == 0 or any(name not in slots for name in wanted):
                return None
            return depth, {name: slots[name] + depth for name in wanted}
    return None


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _FiberUnwinder(gdb.unwinder.Unwinder):
    """While a fiber is selected for a thread, the caller of that thread's
    innermost frame is the fiber's suspended context: frames #1 and up are the
    fiber's. Works on core files, where registers cannot be written."""

    def __init__(self):
        super().__init__("weft fibers")
        self.selection = None  # (thread ptid, fiber, saved registers)

    def __call__(self, pending_frame):
        if self.selection is None or pending_frame.level() != 0:
            return None
        ptid, fiber, registers = self.selection
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


_unwinder = _FiberUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _selected_level():
    try:
        return gdb.selected_frame().level()
    except gdb.error:
        return 0


def _restore_level(level):
    frame = gdb.newest_frame()
    for _ in range(level):
        older = frame.older()
        if older is None:
            break
        frame = older
    frame.select()


@contextlib.contextmanager
def _fiber_frames(runtime, fiber):
    """Within the block, frames #1 and up of the selected thread are the fiber's."""
    previous = _unwinder.selection
    level = _selected_level()
    _unwinder.selection = (gdb.selected_thread().ptid, fiber, runtime.saved_registers(fiber))
    gdb.invalidate_cached_frames()
    try:
        yield
    finally:
        _unwinder.selection = previous
        gdb.invalidate_cached_frames()
        _restore_level(level)


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


def _fiber_stack_frames(limit, skip_innermost=True):
    """The frames of the selected thread up to the fiber's entry (Boost.Context's
    trampoline in make_fcontext, not included), without the innermost one when
    it is the thread's own frame shown below a fiber's."""
    frames = []
    try:
        frame = gdb.newest_frame()
        if skip_innermost:
            frame = frame.older()
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


def _running_threads(inferior):
    """[(thread, stack pointer)] of every stopped thread of the inferior."""
    result = []
    selected = gdb.selected_thread()
    level = _selected_level()
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
        _restore_level(level)
    return result


@contextlib.contextmanager
def _on_thread(thread):
    selected = gdb.selected_thread()
    level = _selected_level()
    thread.switch()
    try:
        yield
    finally:
        selected.switch()
        _restore_level(level)


def _thread_of(fiber, threads):
    for thread, sp in threads:
        if fiber.contains(sp):
            return thread
    return None


def _suspended_where(runtime, fiber):
    if fiber.fctx == 0:
        return "switching (registers not saved yet)"
    try:
        with _fiber_frames(runtime, fiber):
            frames = _fiber_stack_frames(64)
    except _Error as e:
        return "? (%s)" % e
    if not frames:
        return "not started"
    frame, via = _where(frames)
    text = _describe_frame(frame)
    return text + (" (in %s)" % via if via and via != frame.short else "")


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
                raise _Error("weft: %s needs a value" % word)
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
        raise _Error("weft: %s must be a number, not %r" % (what, text)) from None


class _WeftCommand(gdb.Command):
    """Commands for weft fibers.

weft fibers [OPTIONS]   list fibers: id, state, group, where each one is
weft bt ID [BT-OPTIONS] backtrace of fiber ID
weft select [ID|none]   show fiber ID's frames as frames #1.. of this thread
weft gcore [FILE]       write a core file that keeps the fiber stacks"""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_STACK, prefix=True)

    def invoke(self, argument, from_tty):
        gdb.execute("help weft", from_tty)


class _FibersCommand(gdb.Command):
    """List weft fibers: id, state, scheduling group, and where each one is.

Usage: weft fibers [--state STATE[,STATE...]] [--group N] [--limit N] [--no-where]

For a suspended fiber (parked, or ready after a yield) WHERE is the innermost
frame of its stack outside weft and the standard library, with the weft function
it waits in; for a running fiber, the thread that runs it. Finding where a fiber
is takes an unwind, so at most --limit fibers are listed (default 200, 0 for no
limit); a summary by state follows. STATE is ready, running, parked or exited."""

    def __init__(self):
        super().__init__("weft fibers", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        options, rest = _parse_options(argument, ("--no-where",),
                                       ("--state", "--group", "--limit"))
        if rest:
            raise _Error("weft fibers: unexpected %r (see `help weft fibers`)" % rest[0])
        states = None
        if "--state" in options:
            states = set(options["--state"].split(","))
            unknown = states - set(_STATES.values())
            if unknown:
                raise _Error("weft fibers: unknown state %r" % sorted(unknown)[0])
        group = _integer(options["--group"], "--group") if "--group" in options else None
        limit = _integer(options.get("--limit", "200"), "--limit")
        where = "--no-where" not in options

        runtime = _Runtime()
        threads = _running_threads(runtime.inferior)
        counts, shown, hidden = {}, 0, 0
        lines = ["%8s  %-8s %5s  %s" % ("ID", "STATE", "GROUP", "WHERE")]
        for fiber in sorted(runtime.fibers(), key=lambda f: f.id):
            state = fiber.state_name()
            counts[state] = counts.get(state, 0) + 1
            if (states is not None and state not in states) or \
                    (group is not None and fiber.group != group):
                continue
            if limit and shown >= limit:
                hidden += 1
                continue
            shown += 1
            text = ""
            if fiber.state == 2:
                thread = _thread_of(fiber, threads)
                text = "on " + _thread_label(thread) if thread else "on no thread found"
            elif where and fiber.state in (1, 3):
                text = _suspended_where(runtime, fiber)
            lines.append("%8d  %-8s %5s  %s" % (fiber.id, state,
                                                "?" if fiber.group is None else fiber.group,
                                                text))
        total = sum(counts.values())
        summary = "%d fibers" % total
        if counts:
            summary += ": " + ", ".join("%d %s" % (counts[s], s)
                                        for s in _STATES.values() if s in counts)
        summary += "; %d pooled stack%s" % (runtime.pooled, "" if runtime.pooled == 1 else "s")
        if hidden:
            lines.append("... %d more not listed (--limit N shows more, 0 all)" % hidden)
        lines.append(summary)
        gdb.write("\n".join(lines) + "\n")


class _BacktraceCommand(gdb.Command):
    """Backtrace of a weft fiber.

Usage: weft bt ID [BACKTRACE-OPTIONS]

For a suspended fiber, prints its frames from where it switched away down to its
entry; options such as -full are passed on to `backtrace`. For a running fiber,
prints which thread runs it and that thread's backtrace."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            raise _Error("usage: weft bt ID [BACKTRACE-OPTIONS]")
        fiber_id = _integer(words[0], "the fiber id")
        options = " ".join(words[1:])
        runtime = _Runtime()
        fiber = runtime.find(fiber_id)
        header = "fiber %d (%s, group %s)" % (fiber.id, fiber.state_name(),
                                             "?" if fiber.group is None else fiber.group)
        if fiber.state == 4:
            raise _Error(_exited_message(fiber))
        if fiber.state == 2 or fiber.fctx == 0:
            thread = _thread_of(fiber, _running_threads(runtime.inferior))
            if thread is None:
                raise _Error("weft: %s has no saved registers and no thread runs on its "
                             "stack; it is between two switches" % header)
            gdb.write("%s runs on %s; that thread's backtrace:\n" % (header,
                                                                   _thread_label(thread)))
            with _on_thread(thread):
                count = len(_fiber_stack_frames(100000, skip_innermost=False))
                gdb.execute("backtrace %s %d" % (options, max(count, 1)))
            return
        with _fiber_frames(runtime, fiber):
            frames = _fiber_stack_frames(100000)
            if not frames:
                gdb.write("%s has not started: no frames yet\n" % header)
                return
            text = gdb.execute("backtrace %s %d" % (options, len(frames) + 1),
                               to_string=True)
        gdb.write(header + ":\n" + _drop_thread_frame(text))


def _exited_message(fiber):
    return ("weft: fiber %d has exited and has no frames (it is kept until its Fiber "
            "handle is joined, or until its last switch is over)" % fiber.id)


def _drop_thread_frame(text):
    """Removes frame #0 (the thread's own) and numbers the rest from #0."""
    out, skipping = [], False
    for line in text.splitlines(True):
        m = re.match(r"#(\d+)(\s+)", line)
        if m:
            level = int(m.group(1))
            skipping = level == 0
            if not skipping:
                field = m.group(1) + m.group(2)
                line = "#" + str(level - 1).ljust(len(field)) + line[m.end():]
        elif line.startswith("(More stack frames follow"):
            continue
        if not skipping:
            out.append(line)
    return "".join(out)


class _SelectCommand(gdb.Command):
    """Show a suspended weft fiber's frames in the selected thread.

Usage: weft select ID | weft select none | weft select

After `weft select ID`, frame #0 of the selected thread stays the thread's own and
frames #1 and up are fiber ID's, so `bt`, `frame N`, `up`, `info locals` and
`print` work in the fiber. `weft select none`, switching threads or resuming the
program ends it. Without an argument, shows the selection."""

    def __init__(self):
        super().__init__("weft select", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if not words:
            if _unwinder.selection is None:
                gdb.write("no fiber selected\n")
            else:
                ptid, fiber, _ = _unwinder.selection
                gdb.write("fiber %d is shown as frames #1.. of LWP %d\n" % (fiber.id, ptid[1]))
            return
        if words[0] == "none":
            _clear_selection()
            return
        runtime = _Runtime()
        fiber = runtime.find(_integer(words[0], "the fiber id"))
        if fiber.state == 4:
            raise _Error(_exited_message(fiber))
        if fiber.state == 2 or fiber.fctx == 0:
            raise _Error("weft: fiber %d is running and has no saved frames; `weft bt %d` "
                         "says which thread runs it" % (fiber.id, fiber.id))
        _unwinder.selection = (gdb.selected_thread().ptid, fiber,
                               runtime.saved_registers(fiber))
        gdb.invalidate_cached_frames()
        gdb.write("fiber %d (%s): frames #1 and up of this thread are the fiber's; frame #0 "
                  "is the thread's own. `weft select none` ends this.\n"
                  % (fiber.id, fiber.state_name()))
        gdb.execute("frame 1")


def _clear_selection(*_):
    if _unwinder.selection is not None:
        _unwinder.selection = None
        gdb.invalidate_cached_frames()


gdb.events.cont.connect(_clear_selection)
gdb.events.exited.connect(_clear_selection)


class _GcoreCommand(gdb.Command):
    """Write a core file of the live process that keeps the fiber stacks.

Usage: weft gcore [FILE]     (default: core.PID)

Runs `gcore`, then copies into the file every fiber stack that gcore could not
read: on Linux 6.13 and later weft installs guard pages with MADV_GUARD_INSTALL,
adjacent stacks share one mapping, and gcore gives up on a mapping at its first
guard page, leaving every stack in it out of the core."""

    def __init__(self):
        super().__init__("weft gcore", gdb.COMMAND_FILES)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        runtime = _Runtime()
        if _is_core(runtime.inferior):
            raise _Error("weft gcore: needs a live process, not a core file")
        path = words[0] if words else "core.%d" % runtime.inferior.pid
        fibers = list(runtime.fibers(keep_records=True))
        gdb.execute("gcore %s" % path)
        restored, size = _restore_stacks(runtime, path, fibers)
        if restored:
            gdb.write("weft: copied %d fiber stack%s (%.1f MiB) that gcore left out into %s\n"
                      % (restored, "" if restored == 1 else "s", size / 1048576.0, path))


def _load_segments(core):
    """[(vaddr, file offset, file size)] of the PT_LOAD segments of an ELF64 core."""
    header = core.read(64)
    if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
        raise _Error("weft gcore: %s is not a little-endian ELF64 file" % core.name)
    phoff, = struct.unpack_from("<Q", header, 0x20)
    shoff, = struct.unpack_from("<Q", header, 0x28)
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    if phnum == 0xffff:  # PN_XNUM: the count is in section header 0
        core.seek(shoff + 0x2c)
        phnum, = struct.unpack("<I", core.read(4))
    core.seek(phoff)
    table = core.read(phentsize * phnum)
    segments = []
    for i in range(phnum):
        p_type, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", table,
                                                                 i * phentsize)
        if p_type == 1 and filesz:
            segments.append((vaddr, offset, filesz))
    segments.sort()
    return segments


def _restore_stacks(runtime, path, fibers):
    """Copies live stacks (and every stack record, so that the list can be walked)
    into the core where it holds something else than the process."""
    read = runtime.inferior.read_memory
    restored, size = 0, 0
    with open(path, "r+b") as core:
        segments = _load_segments(core)
        starts = [vaddr for vaddr, _, _ in segments]

        def file_offset(address, length):
            i = bisect.bisect_right(starts, address) - 1
            if i < 0:
                return None
            vaddr, offset, filesz = segments[i]
            return offset + address - vaddr if address + length <= vaddr + filesz else None

        def copy(address, length, check=_RECORD_SIZE):
            """Writes [address, address + length) into the core unless its last
            `check` bytes are there already. gcore saves a mapping from its start
            until a read fails, so a stack whose record (at its top) made it into
            the core is there whole."""
            at = file_offset(address, length)
            if at is None:
                return False
            core.seek(at + length - check)
            if core.read(check) == bytes(read(address + length - check, check)):
                return False
            core.seek(at)
            core.write(bytes(read(address, length)))
            return True

        live = set()
        for fiber in fibers:
            top = fiber.record + _RECORD_SIZE
            low = max(fiber.stack_low, top - fiber.stack_size)
            live.add(fiber.record)
            if copy(low, top - low):
                restored += 1
                size += top - low
        for record in runtime.records:
            if record not in live:
                copy(record, _RECORD_SIZE)
    return restored, size


_WeftCommand()
_FibersCommand()
_BacktraceCommand()
_SelectCommand()
_GcoreCommand()
