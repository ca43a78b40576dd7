// errno in code that may park a fiber between two uses of it.
//
// errno is per thread, and a parked fiber may resume on another worker thread
// (weft carries the fiber's errno value along). But glibc declares
// __errno_location() const, so a compiler may take errno's address once in a
// function and keep it across a call that parks: after the fiber moved, the
// function would read or write the first thread's errno. These functions are
// out of line and take the address afresh at every call.
#ifndef WEFT_RUNTIME_DETAIL_ERRNO_H_
#define WEFT_RUNTIME_DETAIL_ERRNO_H_

namespace weft::detail {

[[gnu::noinline]] int Errno();
[[gnu::noinline]] void SetErrno(int value);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_ERRNO_H_
