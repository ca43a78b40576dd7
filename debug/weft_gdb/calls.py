# Calling a function of the program on one thread, every other thread
# stopped, and putting all its registers back afterwards (the XSAVE area too,
# through ptrace from gdb's own process).

import ctypes
import os
import re
import struct

import gdb

from .common import Error, gdb_settings, restore_level, selected_level


# The registers a call by hand saves through gdb and puts back: the general ones,
# and orig_rax, which tells the kernel to restart the system call the thread was
# stopped in. rip goes back first: gdb's write of rip clears orig_rax.
_GENERAL_REGISTERS = ("rip", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                      "r10", "r11", "r12", "r13", "r14", "r15", "eflags", "orig_rax")
_PTRACE_GETREGSET, _PTRACE_SETREGSET, _NT_X86_XSTATE = 0x4204, 0x4205, 0x202
_XSTATE_BUFFER = 1 << 16  # larger than any XSAVE area so far (11008 bytes with AMX)
_FATAL_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGKILL")


class _PtraceError(Error):
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


class Caller:
    """Calls `int function(void *)` in the program on the selected thread, every
    other thread staying stopped; `with Caller() as caller: caller.call(...)`.

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
        self.level = selected_level()
        try:
            self.xstate = _Xstate(self.thread.ptid[1])
        except _PtraceError:
            self.xstate = None
            return self
        m = re.search(r"Entry point: (0x[0-9a-f]+)", gdb.execute("info files", to_string=True))
        if m is None:
            raise Error("weft: cannot call the program's functions: it has no entry point")
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
            with gdb_settings(("scheduler-locking", "on"), ("unwindonsignal", "on")):
                return int(gdb.parse_and_eval("((int (*)(void *)) 0x%x)((void *) 0x%x)"
                                              % (function, argument)))
        for name, value in (("rip", function), ("rsp", self.sp), ("rdi", argument),
                            ("rax", 0)):
            gdb.execute("set var $%s = 0x%x" % (name, value), to_string=True)
        with gdb_settings(("scheduler-locking", "on")):
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
        raise Error("weft: the call of the function at 0x%x stopped before it returned%s; "
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
        restore_level(self.level)
        return False
