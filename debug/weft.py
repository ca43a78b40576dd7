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

import bisect
import contextlib
import ctypes
import os
import re
import shutil
import struct

import gdb
import gdb.unwinder

_LAYOUT_VERSION = 2
_LAYOUT_FIELDS = ("version", "record_next", "record_fiber", "record_low", "record_size",
                  "record_sleep", "record_saved", "record_saved_from", "fiber_id",
                  "fiber_state", "fiber_group", "fiber_fctx", "fiber_stack_low",
                  "fiber_stack_size", "group_index")
# The fields read from each record and from each fiber's control block, with
# their sizes: a few bytes apart, so one read gets each set.
_RECORD_FIELDS = (("record_next", 8), ("record_fiber", 8), ("record_low", 8),
                  ("record_size", 8), ("record_sleep", 4), ("record_saved", 8),
                  ("record_saved_from", 8))
_FIBER_FIELDS = (("fiber_id", 8), ("fiber_state", 1), ("fiber_group", 8), ("fiber_fctx", 8),
                 ("fiber_stack_low", 8), ("fiber_stack_size", 8))
_FORMATS = {1: "<B", 4: "<I", 8: "<Q"}
_STATES = {1: "ready", 2: "running", 3: "parked", 4: "exited"}
_HIBERNATING, _HIBERNATED = 1, 2  # StackSleep, besides 0: awake
# Records live in arrays in the heap, many to a page: reading them a page at a
# time takes one read for dozens of stacks.
_RECORD_BLOCK = 4096
_MAX_STACKS = 1 << 26  # more records than this means the list loops
_CONTEXT_FUNCTIONS = ("jump_fcontext", "make_fcontext", "ontop_fcontext")
_LIBRARY_PREFIXES = ("std::", "__gnu_cxx::", "boost::", "__cxxabiv1::")
# Boost 1.74's x86_64 SysV jump_fcontext: it moves rsp down 0x38 bytes (below
# the return address), stores mxcsr and the x87 control word at 0x0 and these
# registers above; the saved fcontext_t is that rsp.
_DEFAULT_SAVE_AREA = 0x38
_DEFAULT_SLOTS = {"r12": 0x8, "r13": 0x10, "r14": 0x18, "r15": 0x20, "rbx": 0x28,
                  "rbp": 0x30}
_GCORE_HINT = ("gdb's gcore cannot read stacks whose guard pages were installed with "
               "MADV_GUARD_INSTALL (Linux 6.13 and later) and leaves them out; write cores "
               "with `weft gcore`, or use one written by the kernel")


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


def _unpack(fields, layout, data, at):
    return {name: struct.unpack_from(_FORMATS[size], data, at + layout[name])[0]
            for name, size in fields}


def _span(fields, layout):
    """(lowest offset, highest offset + size) of `fields`."""
    return (min(layout[name] for name, _ in fields),
            max(layout[name] + size for name, size in fields))


class _Fiber:
    __slots__ = ("record", "address", "id", "state", "group", "fctx", "stack_low",
                 "stack_size", "sleep", "saved", "saved_from", "on_stack")

    def state_name(self):
        return _STATES.get(self.state, "state-%d" % self.state)

    def state_text(self):
        """The state, and whether the stack is hibernated."""
        if self.sleep == _HIBERNATED:
            return self.state_name() + " (hibernated)"
        if self.sleep == _HIBERNATING:
            return self.state_name() + " (hibernating)"
        return self.state_name()

    def contains(self, address):
        return self.stack_low <= address < self.stack_low + self.stack_size

    def has_copy(self):
        """Whether the stack's bytes from `saved_from` up are in the copy at `saved`
        (the hibernator sets `saved` once the copy is complete)."""
        return (self.sleep in (_HIBERNATING, _HIBERNATED) and self.saved != 0
                and self.stack_low <= self.saved_from < self.stack_low + self.stack_size)

    def in_copy(self, address, size):
        """Where [address, address + size) of the stack is in the copy, or None."""
        if self.has_copy() and self.saved_from <= address and \
                address + size <= self.stack_low + self.stack_size:
            return self.saved + address - self.saved_from
        return None


class _Runtime:
    """The weft runtime of the selected inferior, read through weft_debug_layout."""

    def __init__(self):
        self.inferior = _require_process()
        self.core = _is_core(self.inferior)
        layout = _address_of("weft_debug_layout")
        self.head = _address_of("weft_debug_stacks")
        if layout is None or self.head is None:
            raise _Error("weft: this program has no weft runtime (no symbols "
                         "weft_debug_layout and weft_debug_stacks: it does not use weft, "
                         "or its symbol table was stripped)")
        version = struct.unpack("<I", self.read(layout, 4))[0]
        if version != _LAYOUT_VERSION:
            raise _Error("weft: the program's weft_debug_layout is version %d, this weft.py "
                         "reads version %d; load the weft.py installed with the program's weft"
                         % (version, _LAYOUT_VERSION))
        values = struct.unpack("<%dI" % len(_LAYOUT_FIELDS),
                               self.read(layout, 4 * len(_LAYOUT_FIELDS)))
        self.layout = dict(zip(_LAYOUT_FIELDS, values))
        self.record_low, self.record_high = _span(_RECORD_FIELDS, self.layout)
        self.fiber_low, self.fiber_high = _span(_FIBER_FIELDS, self.layout)
        self.pooled = 0
        self._blocks = {}
        self._groups = {}
        self._wake_function = None

    def read(self, address, size):
        try:
            return self.inferior.read_memory(address, size)
        except gdb.MemoryError:
            raise _Error("weft: cannot read %d bytes at 0x%x" % (size, address)) from None

    def _broken_list(self, record, what):
        message = "weft: the list of fiber stacks is broken at 0x%x (%s)" % (record, what)
        if self.core:
            message += ": the core file lacks the stack records"
        raise _Error(message)

    def _missing_stack(self, fiber, what):
        message = ("weft: cannot read the control block of the fiber at 0x%x (stack 0x%x-0x%x, "
                   "record 0x%x): %s" % (fiber.address, fiber.stack_low,
                                         fiber.stack_low + fiber.stack_size, fiber.record,
                                         what))
        if self.core:
            message += ": the core file lacks the fiber stacks. " + _GCORE_HINT
        raise _Error(message)

    def _record_fields(self, record):
        """The fields of the record at `record`, read a block at a time."""
        start, end = record + self.record_low, record + self.record_high
        block = start - start % _RECORD_BLOCK
        if end <= block + _RECORD_BLOCK:
            if block not in self._blocks:
                try:
                    self._blocks[block] = bytes(self.inferior.read_memory(block,
                                                                          _RECORD_BLOCK))
                except gdb.MemoryError:
                    self._blocks[block] = None  # at the end of a mapping: read records alone
            data = self._blocks[block]
            if data is not None:
                return _unpack(_RECORD_FIELDS, self.layout, data, record - block)
        try:
            data = self.inferior.read_memory(start, end - start)
        except gdb.MemoryError:
            self._broken_list(record, "unreadable")
        return _unpack(_RECORD_FIELDS, self.layout, data, -self.record_low)

    def fibers(self):
        """Yields every live fiber, walking weft_debug_stacks."""
        record = struct.unpack("<Q", self.read(self.head + self.layout["record_next"], 8))[0]
        self.pooled = 0
        count = 0
        while record != self.head:
            count += 1
            if record == 0 or record % 8 or count > _MAX_STACKS:
                self._broken_list(record, "a record at a bad address")
            fields = self._record_fields(record)
            if fields["record_next"] == 0:
                self._broken_list(record, "the record reads as zeros")
            if fields["record_fiber"] == 0:
                self.pooled += 1
            else:
                yield self._decode(record, fields)
            record = fields["record_next"]

    def _decode(self, record, fields):
        fiber = _Fiber()
        fiber.record = record
        fiber.address = fields["record_fiber"]
        fiber.stack_low = fields["record_low"]
        fiber.stack_size = fields["record_size"]
        fiber.sleep = fields["record_sleep"]
        fiber.saved = fields["record_saved"]
        fiber.saved_from = fields["record_saved_from"]
        fiber.id, fiber.state, fiber.group, fiber.fctx = 0, 0, None, 0
        # The control block of a stack being hibernated, or hibernated, is read
        # from the copy, where it certainly is; the stack's pages may be gone.
        start = fiber.address + self.fiber_low
        size = self.fiber_high - self.fiber_low
        source = fiber.in_copy(start, size)
        try:
            data = self.inferior.read_memory(start if source is None else source, size)
        except gdb.MemoryError:
            self._missing_stack(fiber, "unreadable")
        values = _unpack(_FIBER_FIELDS, self.layout, data, -self.fiber_low)
        if values["fiber_stack_low"] != fiber.stack_low or \
                values["fiber_stack_size"] != fiber.stack_size:
            # A core without the stack's bytes, or a record gone stale.
            self._missing_stack(fiber, "it reads as zeros" if not any(bytes(data)) else
                                "it does not name the stack its record does")
        fiber.id = values["fiber_id"]
        fiber.state = values["fiber_state"]
        fiber.fctx = values["fiber_fctx"]
        fiber.group = self._group_index(values["fiber_group"])
        # Where the frames are: on the stack, unless it is hibernated (the
        # pages are gone, or zeros in a core) and they have not been put back
        # (a core written by `weft restore-core` has them).
        fiber.on_stack = not fiber.has_copy() or self._copy_in_place(fiber)
        return fiber

    def _copy_in_place(self, fiber):
        """Whether the stack holds what its copy holds where the fiber's registers
        are saved, which the unwind starts from. In a live process they are gone
        once the stack is hibernated (and reading them fails, slowly), maybe not
        while the hibernator is stopped halfway; in a core they read as zeros,
        or are absent, unless `weft restore-core` put them back."""
        if fiber.sleep == _HIBERNATED and not self.core:
            return False
        size = _context_layout()[0] + 8
        source = fiber.in_copy(fiber.fctx, size)
        if source is None:
            return False
        try:
            return (bytes(self.inferior.read_memory(fiber.fctx, size))
                    == bytes(self.inferior.read_memory(source, size)))
        except gdb.MemoryError:
            return False

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
        raw = self.read(fiber.fctx, save_area + 8)
        registers = {name: struct.unpack_from("<Q", raw, offset)[0]
                     for name, offset in slots.items()}
        registers["rip"] = struct.unpack_from("<Q", raw, save_area)[0]
        registers["rsp"] = fiber.fctx + save_area + 8
        return registers

    def wake(self, fiber, caller=None):
        """Has the runtime put a hibernated fiber's stack back, in a live process:
        calls weft_debug_wake_hibernated on the selected thread with every other
        thread stopped (the hibernator's too, which would otherwise serve the
        same stack), through `caller` (a _Caller) or a _Caller of its own. Returns
        the fiber as read afterwards."""
        if self.core:
            raise _Error(_hibernated_in_core(fiber))
        if fiber.sleep == _HIBERNATING:
            raise _Error("weft: fiber %d is being hibernated: the program was stopped while "
                         "its stack was copied out. Let the program run a moment and stop it "
                         "again" % fiber.id)
        if self._wake_function is None:
            self._wake_function = _address_of("weft_debug_wake_hibernated")
            if self._wake_function is None:
                raise _Error("weft: fiber %d is hibernated and the program has no "
                             "weft_debug_wake_hibernated to wake it" % fiber.id)
        try:
            if caller is None:
                with _Caller() as own:
                    result = own.call(self._wake_function, fiber.record)
            else:
                result = caller.call(self._wake_function, fiber.record)
        except gdb.error as e:
            raise _Error("weft: could not wake hibernated fiber %d: calling "
                         "weft_debug_wake_hibernated failed: %s" % (fiber.id, e)) from None
        if result != 0:
            raise _Error("weft: could not wake hibernated fiber %d: "
                         "weft_debug_wake_hibernated(0x%x) returned %d (no hibernator, or "
                         "the stack is not hibernated)" % (fiber.id, fiber.record, result))
        woken = self._decode(fiber.record, self._record_fields_now(fiber.record))
        if not woken.on_stack:
            raise _Error("weft: fiber %d was woken but its stack still cannot be read"
                         % fiber.id)
        return woken

    def _record_fields_now(self, record):
        self._blocks.clear()
        return self._record_fields(record)

    def with_frames(self, fiber):
        """The fiber, with its frames on its stack: a hibernated fiber of a live
        process is woken. Raises with the reason when they cannot be."""
        if fiber.on_stack:
            return fiber
        return self.wake(fiber)


def _hibernated_in_core(fiber):
    top = fiber.stack_low + fiber.stack_size
    return ("weft: fiber %d was hibernated when this core was written: its stack pages had "
            "been given back to the kernel, so the core has none of its frames. They are in "
            "the copy at 0x%x (%d bytes, the stack's 0x%x-0x%x). `weft restore-core FILE` "
            "writes a copy of this core with them in place, to load with `core-file FILE`; "
            "`weft gcore` on a live process writes cores that have them"
            % (fiber.id, fiber.saved, top - fiber.saved_from, fiber.saved_from, top))


# The registers a call by hand saves through gdb and puts back: the general ones,
# and orig_rax, which tells the kernel to restart the system call the thread was
# stopped in. rip goes back first: gdb's write of rip clears orig_rax.
_GENERAL_REGISTERS = ("rip", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                      "r10", "r11", "r12", "r13", "r14", "r15", "eflags", "orig_rax")
_PTRACE_GETREGSET, _PTRACE_SETREGSET, _NT_X86_XSTATE = 0x4204, 0x4205, 0x202
_XSTATE_BUFFER = 1 << 16  # larger than any XSAVE area so far (11008 bytes with AMX)
_FATAL_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGKILL")


class _PtraceError(_Error):
    pass


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Xstate:
    """A thread's whole XSAVE area (x87, SSE, AVX, AVX-512, AMX... state), read
    and written with ptrace by gdb's own process, the tracer. Constructing one
    proves that it can be written back."""

    def __init__(self, lwp):
        self.lwp = lwp
        try:
            self._ptrace = ctypes.CDLL(None, use_errno=True).ptrace
        except (OSError, AttributeError) as e:
            raise _PtraceError("weft: no ptrace in gdb's process: %s" % e) from None
        self._ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                 ctypes.c_void_p]
        self._ptrace.restype = ctypes.c_long
        self.buffer = ctypes.create_string_buffer(_XSTATE_BUFFER)
        self.length = self._regset(_PTRACE_GETREGSET, _XSTATE_BUFFER)
        self.restore()

    def _regset(self, request, length):
        iov = _Iovec(ctypes.addressof(self.buffer), length)
        if self._ptrace(request, self.lwp, _NT_X86_XSTATE, ctypes.byref(iov)) != 0:
            raise _PtraceError("weft: ptrace(%s) of LWP %d failed: %s"
                               % ("PTRACE_GETREGSET" if request == _PTRACE_GETREGSET
                                  else "PTRACE_SETREGSET", self.lwp,
                                  os.strerror(ctypes.get_errno())))
        return iov.len

    def restore(self):
        self._regset(_PTRACE_SETREGSET, self.length)


class _Caller:
    """Calls `int function(void *)` in the program on the selected thread, every
    other thread staying stopped; `with _Caller() as caller: caller.call(...)`.

    In a native process it calls by hand, as gdb's own call does: saves the
    thread's general registers through gdb and its whole XSAVE area through
    ptrace, points it at the function with a return address on its stack where
    a breakpoint waits, runs it alone, and at the end of the block puts every
    register back. gdb 13 cannot write the XSAVE area back where it is larger
    than gdb's buffer (CPUs with AMX: the kernel takes the whole area or
    nothing), so there its own call runs the function, then fails to restore
    the vector registers and leaves them clobbered. Elsewhere (gdbserver), gdb's
    own call."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        self.level = _selected_level()
        try:
            self.xstate = _Xstate(self.thread.ptid[1])
        except _PtraceError:
            self.xstate = None
            return self
        m = re.search(r"Entry point: (0x[0-9a-f]+)", gdb.execute("info files", to_string=True))
        if m is None:
            raise _Error("weft: cannot call the program's functions: it has no entry point")
        # The program's entry point never runs again: gdb's own calls return there too.
        self.entry = int(m.group(1), 16)
        gdb.newest_frame().select()  # so that `set $reg` writes the thread's registers
        frame = gdb.selected_frame()
        self.saved = [(name, int(frame.read_register(name)) & 0xffffffffffffffff)
                      for name in _GENERAL_REGISTERS]
        # Below the red zone, aligned as the ABI wants at a call.
        self.sp = ((dict(self.saved)["rsp"] - 1024) & ~0xf) - 8
        gdb.selected_inferior().write_memory(self.sp, struct.pack("<Q", self.entry))
        self.enabled = [b for b in gdb.breakpoints() if b.enabled]
        for b in self.enabled:
            b.enabled = False
        self.returned = gdb.Breakpoint("*0x%x" % self.entry, internal=True)
        self.returned.silent = True
        self.signals = []
        gdb.events.stop.connect(self._on_stop)
        return self

    def _on_stop(self, event):
        if isinstance(event, gdb.SignalEvent):
            self.signals.append(event.stop_signal)

    def call(self, function, argument):
        if self.xstate is None:
            with _gdb_settings(("scheduler-locking", "on"), ("unwindonsignal", "on")):
                return int(gdb.parse_and_eval("((int (*)(void *)) 0x%x)((void *) 0x%x)"
                                              % (function, argument)))
        for name, value in (("rip", function), ("rsp", self.sp), ("rdi", argument),
                            ("rax", 0)):
            gdb.execute("set var $%s = 0x%x" % (name, value), to_string=True)
        with _gdb_settings(("scheduler-locking", "on")):
            for _ in range(16):
                del self.signals[:]
                gdb.execute("continue", to_string=True)
                frame = gdb.newest_frame()
                if frame.pc() == self.entry and \
                        int(frame.read_register("rsp")) == self.sp + 8:
                    return ctypes.c_int32(int(frame.read_register("rax"))).value
                if not self.signals or self.signals[0] in _FATAL_SIGNALS:
                    break
                # Another signal (gdb stops for some by default): it is passed
                # on as the thread goes on; a handler runs below the call's frame.
        if self.signals:
            # Not to be delivered when the program goes on: the call caused it.
            gdb.execute("queue-signal 0", to_string=True)
        raise _Error("weft: the call of the function at 0x%x stopped before it returned%s; "
                     "the thread's registers are put back as they were" % (
                         function, " (%s)" % self.signals[0] if self.signals else ""))

    def __exit__(self, *_):
        if self.xstate is not None:
            gdb.events.stop.disconnect(self._on_stop)
            self.returned.delete()
            for b in self.enabled:
                b.enabled = True
            if self.thread.is_valid():
                gdb.newest_frame().select()
                for name, value in self.saved:
                    gdb.execute("set var $%s = 0x%x" % (name, value), to_string=True)
                self.xstate.restore()
                gdb.execute("maintenance flush register-cache", to_string=True)
        _restore_level(self.level)
        return False


@contextlib.contextmanager
def _gdb_settings(*settings):
    """Sets gdb parameters for the block: (name, value) pairs."""
    previous = []
    try:
        for name, value in settings:
            old = gdb.parameter(name)
            if isinstance(old, bool):
                old = "on" if old else "off"
            gdb.execute("set %s %s" % (name, value), to_string=True)
            previous.append((name, old))
        yield
    finally:
        for name, old in reversed(previous):
            gdb.execute("set %s %s" % (name, old), to_string=True)


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


def _own_frames():
    """How many frames the selected thread's innermost function takes: gdb shows
    each function inlined into it as a frame of its own, unwound from the same
    registers (and asks unwinders about the last one only)."""
    frame, count = gdb.newest_frame(), 1
    while frame.type() == gdb.INLINE_FRAME and frame.older() is not None:
        frame, count = frame.older(), count + 1
    return count


@contextlib.contextmanager
def _fiber_frames(runtime, fiber):
    """Within the block, the frames of the selected thread after its own (the
    value of the block, see _own_frames) are the fiber's."""
    previous = _unwinder.selection
    level = _selected_level()
    own = _own_frames()
    _unwinder.selection = (gdb.selected_thread().ptid, fiber, runtime.saved_registers(fiber),
                           own)
    gdb.invalidate_cached_frames()
    try:
        yield own
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


def _fiber_stack_frames(limit, skip):
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
    if not fiber.on_stack:
        # Listing does not wake fibers: a process may have a great many.
        if runtime.core:
            return "? (hibernated: its frames are not in this core; see `weft bt %d`)" \
                % fiber.id
        return "? (hibernated: `weft bt %d` wakes it)" % fiber.id
    try:
        with _fiber_frames(runtime, fiber) as own:
            frames = _fiber_stack_frames(64, own)
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
weft gcore [FILE]       write a core file that keeps the fiber stacks
weft restore-core FILE  write this core with hibernated fibers' stacks in place"""

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
limit); a summary by state follows. STATE is ready, running, parked or exited,
or hibernated: parked fibers whose stack pages the runtime gave back (their
frames are in a copy; `weft bt ID` wakes one to show them, listing does not)."""

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
            unknown = states - set(_STATES.values()) - {"hibernated"}
            if unknown:
                raise _Error("weft fibers: unknown state %r" % sorted(unknown)[0])
        group = _integer(options["--group"], "--group") if "--group" in options else None
        limit = _integer(options.get("--limit", "200"), "--limit")
        where = "--no-where" not in options

        runtime = _Runtime()
        threads = _running_threads(runtime.inferior)
        counts, shown, hidden, hibernated = {}, 0, 0, 0
        rows = [("ID", "STATE", "GROUP", "WHERE")]
        for fiber in sorted(runtime.fibers(), key=lambda f: f.id):
            state = fiber.state_name()
            counts[state] = counts.get(state, 0) + 1
            names = {state}
            if fiber.sleep == _HIBERNATED:
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
                thread = _thread_of(fiber, threads)
                text = "on " + _thread_label(thread) if thread else "on no thread found"
            elif where and fiber.state in (1, 3):
                text = _suspended_where(runtime, fiber)
            rows.append((fiber.id, fiber.state_text(),
                         "?" if fiber.group is None else fiber.group, text))
        width = max(8, max(len(row[1]) for row in rows))
        lines = ["%8s  %-*s %5s  %s" % (row[0], width, row[1], row[2], row[3])
                 for row in rows]
        total = sum(counts.values())
        summary = "%d fibers" % total
        if counts:
            parts = ["%d %s" % (counts[s], s) for s in _STATES.values() if s in counts]
            if hibernated:  # only parked fibers hibernate
                parts = [p + (" (%d hibernated)" % hibernated if p.endswith(" parked") else "")
                         for p in parts]
            summary += ": " + ", ".join(parts)
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
prints which thread runs it and that thread's backtrace. A hibernated fiber of a
live process is woken first (the runtime puts its stack back, as the fiber's next
touch would); in a core file its frames are only in a copy, see `weft
restore-core`."""

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
                count = len(_fiber_stack_frames(100000, 0))
                gdb.execute("backtrace %s %d" % (options, max(count, 1)))
            return
        if not fiber.on_stack:
            fiber = runtime.with_frames(fiber)
            header = header[:-1] + ", woken from hibernation)"
        with _fiber_frames(runtime, fiber) as own:
            frames = _fiber_stack_frames(100000, own)
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


class _SelectCommand(gdb.Command):
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
            if _unwinder.selection is None:
                gdb.write("no fiber selected\n")
            else:
                ptid, fiber, _, own = _unwinder.selection
                gdb.write("fiber %d is shown as frames #%d.. of LWP %d\n"
                          % (fiber.id, own, ptid[1]))
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
        state = fiber.state_name()
        if not fiber.on_stack:
            # Before the selection: the call that wakes it resumes the thread,
            # which ends any selection.
            fiber = runtime.with_frames(fiber)
            state += ", woken from hibernation"
        own = _own_frames()
        _unwinder.selection = (gdb.selected_thread().ptid, fiber,
                               runtime.saved_registers(fiber), own)
        gdb.invalidate_cached_frames()
        gdb.write("fiber %d (%s): frames #%d and up of this thread are the fiber's; %s the "
                  "thread's own. `weft select none` ends this.\n"
                  % (fiber.id, state, own,
                     "frame #0 is" if own == 1 else "frames #0 to #%d are" % (own - 1)))
        gdb.execute("frame %d" % own)


def _clear_selection(*_):
    if _unwinder.selection is not None:
        _unwinder.selection = None
        gdb.invalidate_cached_frames()


gdb.events.cont.connect(_clear_selection)
gdb.events.exited.connect(_clear_selection)


class _GcoreCommand(gdb.Command):
    """Write a core file of the live process that keeps the fiber stacks.

Usage: weft gcore [FILE]     (default: core.PID)

Wakes every hibernated fiber (the runtime puts its stack back), runs `gcore`,
then copies into the file every fiber stack that gcore could not read: on Linux
6.13 and later weft installs guard pages with MADV_GUARD_INSTALL, adjacent
stacks share one mapping, and gcore gives up on a mapping at its first guard
page, leaving every stack in it out of the core."""

    def __init__(self):
        super().__init__("weft gcore", gdb.COMMAND_FILES)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        runtime = _Runtime()
        if runtime.core:
            raise _Error("weft gcore: needs a live process, not a core file")
        path = words[0] if words else "core.%d" % runtime.inferior.pid
        woken = 0
        hibernated = [fiber for fiber in runtime.fibers() if not fiber.on_stack]
        # A stack that cannot be woken goes into the core from its copy, below.
        try:
            if hibernated:
                with _Caller() as caller:
                    for fiber in hibernated:
                        try:
                            runtime.wake(fiber, caller)
                            woken += 1
                        except _Error as e:
                            gdb.write("%s\n" % e)
        except _Error as e:
            gdb.write("%s\n" % e)
        if woken:
            gdb.write("weft: woke %d hibernated fiber%s, so that the core has %s frames\n"
                      % (woken, "" if woken == 1 else "s", "its" if woken == 1 else "their"))
        fibers = list(_Runtime().fibers())
        gdb.execute("gcore %s" % path)
        restored, size = _restore_stacks(runtime, path, fibers)
        if restored:
            gdb.write("weft: copied %d fiber stack%s (%.1f MiB) that gcore left out into %s\n"
                      % (restored, "" if restored == 1 else "s", size / 1048576.0, path))


class _RestoreCoreCommand(gdb.Command):
    """Write a copy of the core file with the stacks of hibernated fibers in place.

Usage: weft restore-core FILE

A fiber hibernated when the core was written has no stack pages in it: its
control block and frames are in a heap copy. This writes the core loaded now to
FILE with each such copy put where it belongs on its stack; after `core-file
FILE`, `weft bt` and `weft select` show those fibers' frames (`weft fibers`
still says they were hibernated). A stack whose address range the core does
not hold at all (plain gcore may leave stacks out) cannot be put back."""

    def __init__(self):
        super().__init__("weft restore-core", gdb.COMMAND_FILES)

    def invoke(self, argument, from_tty):
        words = gdb.string_to_argv(argument)
        if len(words) != 1:
            raise _Error("usage: weft restore-core FILE")
        runtime = _Runtime()
        if not runtime.core:
            raise _Error("weft restore-core: needs a core file; in a live process `weft bt` "
                         "and `weft gcore` wake hibernated fibers")
        m = re.search(r"core dump file:\s*`(.*)', file type", gdb.execute("info target",
                                                                         to_string=True))
        if m is None:
            raise _Error("weft restore-core: cannot tell which file the core is")
        source, path = m.group(1), words[0]
        if os.path.abspath(source) == os.path.abspath(path):
            raise _Error("weft restore-core: FILE must be another file than the core")
        hibernated = [fiber for fiber in runtime.fibers() if not fiber.on_stack]
        shutil.copyfile(source, path)
        restored, size, missing = 0, 0, []
        with open(path, "r+b") as core:
            segments = _CoreSegments(core)
            for fiber in hibernated:
                length = fiber.stack_low + fiber.stack_size - fiber.saved_from
                at = segments.file_offset(fiber.saved_from, length)
                if at is None:
                    missing.append(fiber.id)
                    continue
                core.seek(at)
                core.write(bytes(runtime.read(fiber.saved, length)))
                restored += 1
                size += length
        gdb.write("weft: put the stacks of %d hibernated fiber%s (%d bytes) back in place in "
                  "%s; load it with `core-file %s`\n"
                  % (restored, "" if restored == 1 else "s", size, path, path))
        if missing:
            gdb.write("weft: the core holds no memory for the stacks of fiber%s %s; they "
                      "stay without frames\n" % ("" if len(missing) == 1 else "s",
                                                  ", ".join(str(i) for i in missing)))


class _CoreSegments:
    """Where the memory of an ELF64 core's PT_LOAD segments is in the file."""

    def __init__(self, core):
        header = core.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise _Error("weft: %s is not a little-endian ELF64 file" % core.name)
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
        self.segments = segments
        self.starts = [vaddr for vaddr, _, _ in segments]

    def file_offset(self, address, length):
        """Where [address, address + length) is in the file, or None."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        vaddr, offset, filesz = self.segments[i]
        return offset + address - vaddr if address + length <= vaddr + filesz else None


def _restore_stacks(runtime, path, fibers):
    """Copies live stacks into the core where it holds something else than the
    process. Each stack is checked by its top bytes, from the fiber's control
    block up (which cannot be all zeros): gcore saves a mapping from its start
    until a read fails, so a stack whose top made it into the core is there
    whole."""
    read = runtime.inferior.read_memory
    restored, size = 0, 0
    with open(path, "r+b") as core:
        segments = _CoreSegments(core)
        for fiber in fibers:
            top = fiber.stack_low + fiber.stack_size
            # A stack the runtime could not put back goes in from its copy.
            low = fiber.stack_low if fiber.on_stack else fiber.saved_from
            source = low if fiber.on_stack else fiber.saved
            at = segments.file_offset(low, top - low)
            if at is None:
                continue
            control = fiber.address - low
            try:
                live = bytes(read(source + control, top - fiber.address))
                core.seek(at + control)
                if core.read(len(live)) == live:
                    continue
                core.seek(at)
                core.write(bytes(read(source, top - low)))
            except gdb.MemoryError:
                gdb.write("weft: warning: cannot read the stack of fiber %d; the core lacks "
                          "its frames\n" % fiber.id)
                continue
            restored += 1
            size += top - low
    return restored, size


_WeftCommand()
_FibersCommand()
_BacktraceCommand()
_SelectCommand()
_GcoreCommand()
_RestoreCoreCommand()
