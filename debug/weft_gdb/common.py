# What every module of weft_gdb uses: the error the commands raise, symbol
# lookup, and saving and restoring gdb state (selected frame, parameters).

import contextlib

import gdb


class Error(gdb.GdbError):
    pass


def address_of(name):
    try:
        return int(gdb.parse_and_eval("(unsigned long)&'%s'" % name))
    except gdb.error:
        return None


def selected_level():
    """The level of the selected frame, for restore_level."""
    try:
        return gdb.selected_frame().level()
    except gdb.error:
        return 0


def restore_level(level):
    """Selects the frame at `level` of the selected thread (its outermost if fewer)."""
    frame = gdb.newest_frame()
    for _ in range(level):
        older = frame.older()
        if older is None:
            break
        frame = older
    frame.select()


@contextlib.contextmanager
def gdb_settings(*settings):
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
