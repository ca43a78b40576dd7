// The C library's own functions for the runtime's system calls.
//
// When libweft_hook is in the process, the names read, write, poll, close ...
// resolve to its interposed versions, which send a fiber's calls back into the
// runtime. The runtime's own calls (a worker writing its poller's eventfd, the
// non-blocking attempt inside weft::io::Read) must not take that detour: they
// go through Libc(), the hook's table of the C library's functions when the
// hook is present, otherwise the C library's functions themselves.
#ifndef WEFT_RUNTIME_DETAIL_LIBC_H_
#define WEFT_RUNTIME_DETAIL_LIBC_H_

#include "runtime/detail/hook_abi.h"

namespace weft::detail {

// The hook library's table, or nullptr when no hook is loaded (looked up once,
// with dlsym(RTLD_DEFAULT)). A hook whose ABI version differs from the
// runtime's aborts the process with a message naming both.
weft_hook_table* HookTable();

// The C library's read, write, poll, close, ... (never the hooked ones).
const weft_hook_functions& Libc();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_LIBC_H_
