# Where Boost.Context's jump_fcontext saves a suspended fiber's registers:
# read once from its code (x86_64, AT&T or Intel disassembly), Boost 1.74's
# layout when that fails.

import re

import gdb

from .common import address_of

# Boost 1.74's x86_64 SysV jump_fcontext: it moves rsp down 0x38 bytes (below
# the return address), stores mxcsr and the x87 control word at 0x0 and these
# registers above; the saved fcontext_t is that rsp.
_DEFAULT_SAVE_AREA = 0x38
_DEFAULT_SLOTS = {"r12": 0x8, "r13": 0x10, "r14": 0x18, "r15": 0x20, "rbx": 0x28,
                  "rbp": 0x30}

_context_layouts = {}


def context_layout():
    """(save area size, {register: offset}) of jump_fcontext, read from its code."""
    address = address_of("jump_fcontext")
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
