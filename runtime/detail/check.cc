#include "runtime/detail/check.h"

#include <cstdio>
#include <cstdlib>

namespace weft::detail {

FatalMessage::FatalMessage(const char* file, int line, const char* condition) {
  stream_ << file << ":" << line << ": check failed: " << condition << ": ";
}

FatalMessage::~FatalMessage() { FatalError(stream_.str().c_str()); }

void FatalError(const char* message) {
  std::fprintf(stderr, "weft: fatal: %s\n", message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace weft::detail
