// What the descriptor-level tests of weft::io share (fd_test.cc,
// fd_lifecycle_test.cc): the runtime per worker count, and messages.
#ifndef WEFT_TEST_IO_FD_TEST_UTIL_H_
#define WEFT_TEST_IO_FD_TEST_UTIL_H_

#include <cstddef>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft::testing {

// Parameter: the number of workers of the runtime each test runs in.
class FdTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override { StartRuntime(OptionsWithWorkers(GetParam())); }
  void TearDown() override { TerminateRuntime(); }
};

// Runs `body` in a fiber and waits for it.
template <class F>
void InFiber(F&& body) {
  Fiber(std::forward<F>(body)).Join();
}

// A message of `size` bytes that differs with `seed`.
inline std::string Message(std::size_t size, std::size_t seed) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    text[i] = static_cast<char>('a' + (i * 7 + seed * 13) % 26);
  }
  return text;
}

}  // namespace weft::testing

#endif  // WEFT_TEST_IO_FD_TEST_UTIL_H_
