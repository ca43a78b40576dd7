#include "runtime/detail/libc.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "runtime/detail/check.h"

namespace weft::detail {
namespace {

// The variadic three are called with their one optional argument.
int CallFcntl(int fd, int cmd, void* arg) { return ::fcntl(fd, cmd, arg); }
int CallFcntl64(int fd, int cmd, void* arg) { return ::fcntl64(fd, cmd, arg); }
int CallIoctl(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }

// Without a hook in the process these names are the C library's.
weft_hook_functions OwnFunctions() {
  weft_hook_functions functions{};
#define WEFT_OWN_FUNCTION(name, ret, params, args) functions.name = &::name;
  WEFT_HOOKED_PLAIN_FUNCTIONS(WEFT_OWN_FUNCTION)
#undef WEFT_OWN_FUNCTION
  functions.setsockopt = &::setsockopt;
  functions.fcntl = &CallFcntl;
  functions.fcntl64 = &CallFcntl64;
  functions.ioctl = &CallIoctl;
  return functions;
}

}  // namespace

weft_hook_table* HookTable() {
  static weft_hook_table* const table = [] {
    auto getter =
        reinterpret_cast<weft_hook_table_getter>(dlsym(RTLD_DEFAULT, kHookTableSymbol));
    if (getter == nullptr) return static_cast<weft_hook_table*>(nullptr);
    weft_hook_table* found = getter();
    WEFT_CHECK(found != nullptr && found->abi_version == kHookAbiVersion &&
               found->table_size == sizeof(weft_hook_table))
        << "libweft_hook's interface (version "
        << (found != nullptr ? found->abi_version : 0)
        << ") does not match this runtime's (version " << kHookAbiVersion
        << "): link or preload the hook library built with the same weft";
    return found;
  }();
  return table;
}

const weft_hook_functions& Libc() {
  static const weft_hook_functions own = OwnFunctions();
  static const weft_hook_functions* const functions = [] {
    weft_hook_table* table = HookTable();
    return table != nullptr ? table->real : &own;
  }();
  return *functions;
}

}  // namespace weft::detail
