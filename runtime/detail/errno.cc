#include "runtime/detail/errno.h"

#include <cerrno>

namespace weft::detail {

int Errno() {
  // An empty asm the compiler must assume reads and writes memory, so that
  // not even interprocedural analysis treats this function as pure.
  asm volatile("" ::: "memory");
  return errno;
}

void SetErrno(int value) {
  asm volatile("" ::: "memory");
  errno = value;
}

}  // namespace weft::detail
