// Contract checks that abort with a message saying what was wrong.
//
//   WEFT_CHECK(ptr != nullptr) << "Join() on a Fiber that is not joinable";
//
// WEFT_CHECK stays in release builds and is meant for cheap checks;
// WEFT_DCHECK compiles to nothing (the condition is not evaluated) under NDEBUG.
#ifndef WEFT_RUNTIME_DETAIL_CHECK_H_
#define WEFT_RUNTIME_DETAIL_CHECK_H_

#include <sstream>

#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace weft::detail {

// Collects the streamed message; its destructor prints it and aborts.
class FatalMessage {
 public:
  FatalMessage(const char* file, int line, const char* condition);
  [[noreturn]] ~FatalMessage();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Prints "weft: fatal: <message>" to stderr and aborts. Async-signal-unsafe.
[[noreturn]] void FatalError(const char* message);

}  // namespace weft::detail

#define WEFT_CHECK(cond)         \
  while (WEFT_UNLIKELY(!(cond))) \
  ::weft::detail::FatalMessage(__FILE__, __LINE__, #cond).stream()

#ifdef NDEBUG
#define WEFT_DCHECK(cond) \
  while (false && (cond)) ::weft::detail::FatalMessage(__FILE__, __LINE__, #cond).stream()
#else
#define WEFT_DCHECK(cond) WEFT_CHECK(cond)
#endif

#endif  // WEFT_RUNTIME_DETAIL_CHECK_H_
