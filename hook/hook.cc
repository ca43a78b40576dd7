// libweft_hook: the interposed C library functions. Each one hands the call to
// the runtime's entry point once a runtime has attached (runtime/io/detail/
// hooked_calls.cc decides there whether to park a fiber), and to the C library
// until then. No runtime code lives here (runtime/detail/hook_abi.h says why).
//
// Only the public names are defined (read, poll, close, ...), never the C
// library's internal aliases (__read, __poll, __close): defining those is what
// makes a statically linked program fail with duplicate symbols, and the C
// library's internal calls that use them never block a fiber's worker on a
// descriptor the program knows about.
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/detail/hook_abi.h"

#define WEFT_HOOK_EXPORT __attribute__((visibility("default")))

namespace {

using weft_fcntl_variadic = int (*)(int, int, ...);
using weft_ioctl_variadic = int (*)(int, unsigned long, ...);

weft_hook_functions g_real;
weft_fcntl_variadic g_real_fcntl = nullptr;
weft_fcntl_variadic g_real_fcntl64 = nullptr;
weft_ioctl_variadic g_real_ioctl = nullptr;
weft_hook_table g_table{weft::detail::kHookAbiVersion, sizeof(weft_hook_table), &g_real,
                        {nullptr}};
pthread_once_t g_resolve_once = PTHREAD_ONCE_INIT;

// The function behind the hook for `name`: the next definition after this
// library (the C library's, or a sanitizer's interceptor that comes later and
// calls the C library's), except that when a sanitizer's interceptor exists but
// the program binds `name` to this hook (the hook linked statically into a
// ThreadSanitizer program, whose interceptors are weak symbols the hook
// overrides), it is that interceptor: the sanitizer then still sees the real
// calls, and the hook's parking runs outside the interceptor, which is where
// ThreadSanitizer expects a program's code (inside a blocking interceptor it
// ignores the synchronization the parking does).
void* Next(const char* name) {
  char interceptor_name[64] = "__interceptor_";
  strncat(interceptor_name, name, sizeof(interceptor_name) - strlen(interceptor_name) - 1);
  void* interceptor = dlsym(RTLD_DEFAULT, interceptor_name);
  void* found = interceptor != nullptr && dlsym(RTLD_DEFAULT, name) != interceptor
                    ? interceptor
                    : dlsym(RTLD_NEXT, name);
  if (found == nullptr) {
    const char* prefix = "libweft_hook: the C library's ";
    const char* suffix =
        " was not found with dlsym(RTLD_NEXT); the hook needs a dynamically linked C "
        "library\n";
    // The real write is what is missing, so the message uses the system call.
    (void)!syscall(SYS_write, 2, prefix, strlen(prefix));
    (void)!syscall(SYS_write, 2, name, strlen(name));
    (void)!syscall(SYS_write, 2, suffix, strlen(suffix));
    abort();
  }
  return found;
}

int RealFcntl(int fd, int cmd, void* arg) { return g_real_fcntl(fd, cmd, arg); }
int RealFcntl64(int fd, int cmd, void* arg) { return g_real_fcntl64(fd, cmd, arg); }
int RealIoctl(int fd, unsigned long request, void* arg) { return g_real_ioctl(fd, request, arg); }

void ResolveAll() {
#define WEFT_RESOLVE(name, ret, params, args) \
  g_real.name = reinterpret_cast<ret(*) params>(Next(#name));
  WEFT_HOOKED_PLAIN_FUNCTIONS(WEFT_RESOLVE)
#undef WEFT_RESOLVE
  g_real.setsockopt =
      reinterpret_cast<int (*)(int, int, int, const void*, socklen_t)>(Next("setsockopt"));
  g_real_fcntl = reinterpret_cast<weft_fcntl_variadic>(Next("fcntl"));
  g_real_fcntl64 = reinterpret_cast<weft_fcntl_variadic>(Next("fcntl64"));
  g_real_ioctl = reinterpret_cast<weft_ioctl_variadic>(Next("ioctl"));
  g_real.fcntl = &RealFcntl;
  g_real.fcntl64 = &RealFcntl64;
  g_real.ioctl = &RealIoctl;
}

const weft_hook_functions* Real() {
  pthread_once(&g_resolve_once, &ResolveAll);
  return &g_real;
}

// The runtime's entry points once attached, else the C library's functions.
const weft_hook_functions* Target() {
  const weft_hook_functions* calls = g_table.calls.load(std::memory_order_acquire);
  return calls != nullptr ? calls : Real();
}

}  // namespace

extern "C" {

WEFT_HOOK_EXPORT weft_hook_table* weft_hook_table_v1() {
  Real();
  return &g_table;
}

#define WEFT_INTERPOSE(name, ret, params, args) \
  WEFT_HOOK_EXPORT ret name params { return Target()->name args; }
WEFT_HOOKED_PLAIN_FUNCTIONS(WEFT_INTERPOSE)
#undef WEFT_INTERPOSE

WEFT_HOOK_EXPORT int setsockopt(int fd, int level, int name, const void* value,
                                socklen_t len) noexcept {
  return Target()->setsockopt(fd, level, name, value, len);
}

// The optional argument is read as a pointer-sized value, as the C library
// reads it: an int argument arrives in the same register.
WEFT_HOOK_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return Target()->fcntl(fd, cmd, arg);
}

WEFT_HOOK_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return Target()->fcntl64(fd, cmd, arg);
}

WEFT_HOOK_EXPORT int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return Target()->ioctl(fd, request, arg);
}

}  // extern "C"
