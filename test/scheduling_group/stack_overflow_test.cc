// A fiber that overflows its stack dies with a message naming the fiber and the
// option to raise; other segmentation faults are left as they were.
#include <signal.h>

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/detail/sanitizers.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft {
namespace {

class StackOverflowDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { ::testing::FLAGS_gtest_death_test_style = "threadsafe"; }
};

TEST_F(StackOverflowDeathTest, NamesTheFiberAndTheOptionToRaise) {
  EXPECT_EXIT(
      {
        RuntimeOptions options = testing::OptionsWithWorkers(2);
        options.stack_size = 64 * 1024;
        Runtime runtime(options);
        Fiber fiber([] { testing::RecurseUntilOverflow(0); });
        fiber.Join();
      },
      ::testing::KilledBySignal(SIGSEGV),
      "fiber stack overflow: fiber [0-9]+ ran past the end of its 65536-byte stack.*"
      "FiberAttributes::stack_size.*--weft_fiber_stack_size");
}

TEST_F(StackOverflowDeathTest, ReportsTheFibersOwnStackSize) {
  EXPECT_EXIT(
      {
        Runtime runtime(testing::OptionsWithWorkers(1));
        FiberAttributes attrs;
        attrs.stack_size = 32 * 1024;
        Fiber fiber(attrs, [] { testing::RecurseUntilOverflow(0); });
        fiber.Join();
      },
      ::testing::KilledBySignal(SIGSEGV), "its 32768-byte stack");
}

// Left to the handler installed before (a sanitizer's reports it and exits its
// own way) or to the default action (killed by SIGSEGV).
TEST_F(StackOverflowDeathTest, OtherSegmentationFaultsAreLeftAlone) {
  EXPECT_DEATH(
      {
        Runtime runtime(testing::OptionsWithWorkers(1));
        Fiber fiber([] {
          volatile std::uintptr_t unmapped = 64;  // not null: UBSan would catch that
          *reinterpret_cast<volatile int*>(unmapped) = 1;
        });
        fiber.Join();
      },
      ::testing::Not(::testing::HasSubstr("stack overflow")));
#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
  EXPECT_EXIT(
      {
        Runtime runtime(testing::OptionsWithWorkers(1));
        Fiber fiber([] {
          volatile std::uintptr_t unmapped = 64;
          *reinterpret_cast<volatile int*>(unmapped) = 1;
        });
        fiber.Join();
      },
      ::testing::KilledBySignal(SIGSEGV), "");
#endif
}

}  // namespace
}  // namespace weft
