# Reading the runtime: weft_debug_layout (the field offsets) and the list of
# fiber stacks weft_debug_stacks, decoded into Fiber objects; waking a
# hibernated fiber of a live process through weft_debug_wake_hibernated.

import struct

import gdb

from .calls import Caller
from .common import Error, address_of
from .context import context_layout

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
STATES = {1: "ready", 2: "running", 3: "parked", 4: "exited"}
_HIBERNATING, HIBERNATED = 1, 2  # StackSleep, besides 0: awake
# Records live in arrays in the heap, many to a page: reading them a page at a
# time takes one read for dozens of stacks.
_RECORD_BLOCK = 4096
_MAX_STACKS = 1 << 26  # more records than this means the list loops
_GCORE_HINT = ("gdb's gcore cannot read stacks whose guard pages were installed with "
               "MADV_GUARD_INSTALL (Linux 6.13 and later) and leaves them out; write cores "
               "with `weft gcore`, or use one written by the kernel")


def _require_process():
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or not inferior.threads():
        raise Error("weft: no process: run the program, attach to it or load a core file")
    arch = gdb.selected_frame().architecture().name()
    if arch != "i386:x86-64":
        raise Error("weft: only x86_64 programs are supported (this one is %s)" % arch)
    return inferior


def _is_core(inferior):
    connection = getattr(inferior, "connection", None)
    return connection is not None and connection.type == "core"


def _unpack(fields, layout, data, at):
    return {name: struct.unpack_from(_FORMATS[size], data, at + layout[name])[0]
            for name, size in fields}


def _span(fields, layout):
    """(lowest offset, highest offset + size) of `fields`."""
    return (min(layout[name] for name, _ in fields),
            max(layout[name] + size for name, size in fields))


class Fiber:
    __slots__ = ("record", "address", "id", "state", "group", "fctx", "stack_low",
                 "stack_size", "sleep", "saved", "saved_from", "on_stack")

    def state_name(self):
        return STATES.get(self.state, "state-%d" % self.state)

    def state_text(self):
        """The state, and whether the stack is hibernated."""
        if self.sleep == HIBERNATED:
            return self.state_name() + " (hibernated)"
        if self.sleep == _HIBERNATING:
            return self.state_name() + " (hibernating)"
        return self.state_name()

    def contains(self, address):
        return self.stack_low <= address < self.stack_low + self.stack_size

    def has_copy(self):
        """Whether the stack's bytes from `saved_from` up are in the copy at `saved`
        (the hibernator sets `saved` once the copy is complete)."""
        return (self.sleep in (_HIBERNATING, HIBERNATED) and self.saved != 0
                and self.stack_low <= self.saved_from < self.stack_low + self.stack_size)

    def in_copy(self, address, size):
        """Where [address, address + size) of the stack is in the copy, or None."""
        if self.has_copy() and self.saved_from <= address and \
                address + size <= self.stack_low + self.stack_size:
            return self.saved + address - self.saved_from
        return None


class Runtime:
    """The weft runtime of the selected inferior, read through weft_debug_layout."""

    def __init__(self):
        self.inferior = _require_process()
        self.core = _is_core(self.inferior)
        layout = address_of("weft_debug_layout")
        self.head = address_of("weft_debug_stacks")
        if layout is None or self.head is None:
            raise Error("weft: this program has no weft runtime (no symbols "
                        "weft_debug_layout and weft_debug_stacks: it does not use weft, "
                        "or its symbol table was stripped)")
        version = struct.unpack("<I", self.read(layout, 4))[0]
        if version != _LAYOUT_VERSION:
            raise Error("weft: the program's weft_debug_layout is version %d, this weft.py "
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
            raise Error("weft: cannot read %d bytes at 0x%x" % (size, address)) from None

    def _broken_list(self, record, what):
        message = "weft: the list of fiber stacks is broken at 0x%x (%s)" % (record, what)
        if self.core:
            message += ": the core file lacks the stack records"
        raise Error(message)

    def _missing_stack(self, fiber, what):
        message = ("weft: cannot read the control block of the fiber at 0x%x (stack 0x%x-0x%x, "
                   "record 0x%x): %s" % (fiber.address, fiber.stack_low,
                                         fiber.stack_low + fiber.stack_size, fiber.record,
                                         what))
        if self.core:
            message += ": the core file lacks the fiber stacks. " + _GCORE_HINT
        raise Error(message)

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
        fiber = Fiber()
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
        if fiber.sleep == HIBERNATED and not self.core:
            return False
        size = context_layout()[0] + 8
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
        raise Error("weft: no fiber with id %d (see `weft fibers`)" % fiber_id)

    def saved_registers(self, fiber):
        """The registers jump_fcontext saved for a suspended fiber."""
        save_area, slots = context_layout()
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
        same stack), through `caller` (a Caller) or a Caller of its own. Returns
        the fiber as read afterwards."""
        if self.core:
            raise Error(_hibernated_in_core(fiber))
        if fiber.sleep == _HIBERNATING:
            raise Error("weft: fiber %d is being hibernated: the program was stopped while "
                        "its stack was copied out. Let the program run a moment and stop it "
                        "again" % fiber.id)
        if self._wake_function is None:
            self._wake_function = address_of("weft_debug_wake_hibernated")
            if self._wake_function is None:
                raise Error("weft: fiber %d is hibernated and the program has no "
                            "weft_debug_wake_hibernated to wake it" % fiber.id)
        try:
            if caller is None:
                with Caller() as own:
                    result = own.call(self._wake_function, fiber.record)
            else:
                result = caller.call(self._wake_function, fiber.record)
        except gdb.error as e:
            raise Error("weft: could not wake hibernated fiber %d: calling "
                        "weft_debug_wake_hibernated failed: %s" % (fiber.id, e)) from None
        if result != 0:
            raise Error("weft: could not wake hibernated fiber %d: "
                        "weft_debug_wake_hibernated(0x%x) returned %d (no hibernator, or "
                        "the stack is not hibernated)" % (fiber.id, fiber.record, result))
        woken = self._decode(fiber.record, self._record_fields_now(fiber.record))
        if not woken.on_stack:
            raise Error("weft: fiber %d was woken but its stack still cannot be read"
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
