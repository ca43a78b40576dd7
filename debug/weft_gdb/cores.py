# Core files: `weft gcore` (gcore, plus the fiber stacks it leaves out) and
# `weft restore-core` (a core with the stacks of hibernated fibers put back),
# and where a virtual address is in an ELF64 core.

import bisect
import os
import re
import shutil
import struct

import gdb

from .calls import Caller
from .common import Error
from .layout import Runtime


class GcoreCommand(gdb.Command):
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
        runtime = Runtime()
        if runtime.core:
            raise Error("weft gcore: needs a live process, not a core file")
        path = words[0] if words else "core.%d" % runtime.inferior.pid
        woken = 0
        hibernated = [fiber for fiber in runtime.fibers() if not fiber.on_stack]
        # A stack that cannot be woken goes into the core from its copy, below.
        try:
            if hibernated:
                with Caller() as caller:
                    for fiber in hibernated:
                        try:
                            runtime.wake(fiber, caller)
                            woken += 1
                        except Error as e:
                            gdb.write("%s\n" % e)
        except Error as e:
            gdb.write("%s\n" % e)
        if woken:
            gdb.write("weft: woke %d hibernated fiber%s, so that the core has %s frames\n"
                      % (woken, "" if woken == 1 else "s", "its" if woken == 1 else "their"))
        fibers = list(Runtime().fibers())
        gdb.execute("gcore %s" % path)
        restored, size = _restore_stacks(runtime, path, fibers)
        if restored:
            gdb.write("weft: copied %d fiber stack%s (%.1f MiB) that gcore left out into %s\n"
                      % (restored, "" if restored == 1 else "s", size / 1048576.0, path))


class RestoreCoreCommand(gdb.Command):
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
            raise Error("usage: weft restore-core FILE")
        runtime = Runtime()
        if not runtime.core:
            raise Error("weft restore-core: needs a core file; in a live process `weft bt` "
                        "and `weft gcore` wake hibernated fibers")
        m = re.search(r"core dump file:\s*`(.*)', file type", gdb.execute("info target",
                                                                         to_string=True))
        if m is None:
            raise Error("weft restore-core: cannot tell which file the core is")
        source, path = m.group(1), words[0]
        if os.path.abspath(source) == os.path.abspath(path):
            raise Error("weft restore-core: FILE must be another file than the core")
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
            raise Error("weft: %s is not a little-endian ELF64 file" % core.name)
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
