// The interface between libweft_hook (hook/) and the runtime: what each side
// hands the other. Internal; hook/hook.h is the public face.
//
// The hook library holds only the interposed C library symbols, the C
// library's own functions behind them (found with dlsym(RTLD_NEXT)), and a
// slot for the runtime's fiber-aware entry points. It contains no runtime:
// whether the program links weft statically and preloads the hook, links the
// shared hook, links the static hook form, or dlopens a module whose calls the
// hook catches, exactly one runtime exists, the program's. The runtime finds
// the hook with dlsym(RTLD_DEFAULT, kHookTableSymbol) and, when it starts,
// stores its entry points in the table; until then every interposed call goes
// to the C library. The runtime's own system calls always use the table's
// `real` functions, so they never come back through the hooks.
//
// Any change to these structures changes kHookAbiVersion: a hook library and
// a runtime of different versions refuse each other with a message.
#ifndef WEFT_RUNTIME_DETAIL_HOOK_ABI_H_
#define WEFT_RUNTIME_DETAIL_HOOK_ABI_H_

#include <netdb.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

// X(name, return type, parameters, arguments): every function the hook
// interposes, with the C library's signature. The plain ones are interposed by
// one macro; the special ones are written out by hand because their C
// declarations are variadic (fcntl, fcntl64, ioctl: here they take their one
// optional argument as a pointer-sized value, the way the C library reads it)
// or carry an exception specification (setsockopt).
#define WEFT_HOOKED_FUNCTIONS(X) WEFT_HOOKED_PLAIN_FUNCTIONS(X) WEFT_HOOKED_SPECIAL_FUNCTIONS(X)

#define WEFT_HOOKED_PLAIN_FUNCTIONS(X)                                                 \
  X(read, ssize_t, (int fd, void* buf, size_t n), (fd, buf, n))                        \
  X(write, ssize_t, (int fd, const void* buf, size_t n), (fd, buf, n))                 \
  X(readv, ssize_t, (int fd, const struct iovec* iov, int iovcnt), (fd, iov, iovcnt))  \
  X(writev, ssize_t, (int fd, const struct iovec* iov, int iovcnt), (fd, iov, iovcnt)) \
  X(recv, ssize_t, (int fd, void* buf, size_t n, int flags), (fd, buf, n, flags))      \
  X(send, ssize_t, (int fd, const void* buf, size_t n, int flags), (fd, buf, n, flags)) \
  X(recvfrom, ssize_t,                                                                 \
    (int fd, void* buf, size_t n, int flags, struct sockaddr* addr, socklen_t* len),   \
    (fd, buf, n, flags, addr, len))                                                    \
  X(sendto, ssize_t,                                                                   \
    (int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr,        \
     socklen_t len),                                                                   \
    (fd, buf, n, flags, addr, len))                                                    \
  X(recvmsg, ssize_t, (int fd, struct msghdr* msg, int flags), (fd, msg, flags))       \
  X(sendmsg, ssize_t, (int fd, const struct msghdr* msg, int flags), (fd, msg, flags)) \
  X(accept, int, (int fd, struct sockaddr* addr, socklen_t* len), (fd, addr, len))     \
  X(accept4, int, (int fd, struct sockaddr* addr, socklen_t* len, int flags),          \
    (fd, addr, len, flags))                                                            \
  X(connect, int, (int fd, const struct sockaddr* addr, socklen_t len), (fd, addr, len)) \
  X(poll, int, (struct pollfd * fds, nfds_t n, int timeout), (fds, n, timeout))        \
  X(select, int,                                                                       \
    (int n, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,                      \
     struct timeval* timeout),                                                         \
    (n, readfds, writefds, exceptfds, timeout))                                        \
  X(sleep, unsigned, (unsigned seconds), (seconds))                                    \
  X(usleep, int, (useconds_t usec), (usec))                                            \
  X(nanosleep, int, (const struct timespec* req, struct timespec* rem), (req, rem))    \
  X(close, int, (int fd), (fd))                                                        \
  X(getaddrinfo, int,                                                                  \
    (const char* node, const char* service, const struct addrinfo* hints,              \
     struct addrinfo** result),                                                        \
    (node, service, hints, result))                                                    \
  X(gethostbyname, struct hostent*, (const char* name), (name))                        \
  X(gethostbyname_r, int,                                                              \
    (const char* name, struct hostent* ret, char* buf, size_t buflen,                  \
     struct hostent** result, int* h_errnop),                                          \
    (name, ret, buf, buflen, result, h_errnop))

#define WEFT_HOOKED_SPECIAL_FUNCTIONS(X)                                               \
  X(setsockopt, int,                                                                   \
    (int fd, int level, int name, const void* value, socklen_t len),                   \
    (fd, level, name, value, len))                                                     \
  X(fcntl, int, (int fd, int cmd, void* arg), (fd, cmd, arg))                          \
  X(fcntl64, int, (int fd, int cmd, void* arg), (fd, cmd, arg))                        \
  X(ioctl, int, (int fd, unsigned long request, void* arg), (fd, request, arg))

extern "C" {

// One pointer per hooked function, with the signatures above.
struct weft_hook_functions {
#define WEFT_HOOK_FIELD(name, ret, params, args) ret(*name) params;
  WEFT_HOOKED_FUNCTIONS(WEFT_HOOK_FIELD)
#undef WEFT_HOOK_FIELD
};

struct weft_hook_table {
  unsigned abi_version;
  unsigned table_size;  // sizeof(weft_hook_table), checked with the version
  // The C library's functions (never null once the table is handed out).
  const weft_hook_functions* real;
  // The runtime's entry points, stored once when a runtime starts; null until
  // then. Each entry decides per call whether to park a fiber or to go to the
  // C library.
  std::atomic<const weft_hook_functions*> calls;
};

// Exported by the hook library (and, for the static form, by the executable
// through hook/exported_symbols.list): the table, with `real` resolved.
typedef weft_hook_table* (*weft_hook_table_getter)();
}

namespace weft::detail {
inline constexpr unsigned kHookAbiVersion = 1;
inline constexpr const char* kHookTableSymbol = "weft_hook_table_v1";
}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_HOOK_ABI_H_
