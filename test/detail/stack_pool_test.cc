#include "runtime/detail/stack_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/detail/sanitizers.h"

namespace weft::detail {
namespace {

constexpr std::size_t kSize = 64 * 1024;

std::size_t CountMappings() {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

class StackPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ReleasePooledStacks();
    ConfigureStackPool(kSize, /*guard_page=*/true);
  }
  void TearDown() override { ReleasePooledStacks(); }

  static Stack MustAllocate(std::size_t size = 0) {
    Stack stack;
    int error = 0;
    EXPECT_TRUE(AllocateStack(size, &stack, &error)) << "errno " << error;
    return stack;
  }
};

TEST_F(StackPoolTest, StacksAreWritableAndOfTheRequestedSize) {
  Stack stack = MustAllocate();
  EXPECT_EQ(stack.size, kSize);
  EXPECT_TRUE(stack.guard);
  for (std::size_t i = 0; i < stack.size; i += 4096) stack.low[i] = 1;
  StackTop(stack)[-1] = 1;  // the record lives off the stack
  FreeStack(stack);
}

// Pages of the stacks in [begin, end) resident now.
std::size_t ResidentPages(const std::vector<Stack>& stacks) {
  std::size_t resident = 0;
  for (const Stack& stack : stacks) {
    std::vector<unsigned char> pages(stack.size / 4096);
    EXPECT_EQ(mincore(stack.low, stack.size, pages.data()), 0);
    for (unsigned char page : pages) resident += page & 1;
  }
  return resident;
}

TEST_F(StackPoolTest, PoolPastItsHotLimitGivesPagesBack) {
  constexpr std::size_t kStacks = 3 * 64 + 64;  // past every thread cache
  std::vector<Stack> stacks;
  for (std::size_t i = 0; i < kStacks; ++i) {
    stacks.push_back(MustAllocate());
    for (std::size_t at = 0; at < kSize; at += 4096) stacks.back().low[at] = 1;
  }
  EXPECT_EQ(ResidentPages(stacks), kStacks * (kSize / 4096));
  SetMaxHotPooledStacksForTesting(32);
  for (const Stack& stack : stacks) FreeStack(stack);
  // The thread cache keeps up to 64 hot, the global pool 32 more; the rest of
  // the batches handed in gave their pages back.
  EXPECT_LE(ResidentPages(stacks), (64 + 32) * (kSize / 4096));
  SetMaxHotPooledStacksForTesting(std::size_t{1} << 18);
  // Taken again, they work as before.
  std::vector<Stack> again;
  for (std::size_t i = 0; i < kStacks; ++i) {
    again.push_back(MustAllocate());
    again.back().low[0] = 2;
    StackTop(again.back())[-1] = 3;
  }
  for (const Stack& stack : again) FreeStack(stack);
}

TEST_F(StackPoolTest, SteadyStateReusesStacksWithoutMapping) {
  FreeStack(MustAllocate());
  const std::uint64_t maps_before = GetStackPoolStats().map_calls;
  for (int i = 0; i < 10000; ++i) {
    Stack a = MustAllocate();
    Stack b = MustAllocate();
    FreeStack(a);
    FreeStack(b);
  }
  EXPECT_LE(GetStackPoolStats().map_calls - maps_before, 1u)
      << "the pool must serve a steady allocate/free cycle without new mmap calls";
}

TEST_F(StackPoolTest, AFreedStackIsTheNextOneHandedOut) {
  Stack first = MustAllocate();
  FreeStack(first);
  Stack second = MustAllocate();
  EXPECT_EQ(first.low, second.low) << "a hot stack should be reused first";
  FreeStack(second);
}

TEST_F(StackPoolTest, NonDefaultSizesArePooledToo) {
  const std::size_t big = RoundUpToPages(256 * 1024);
  Stack stack = MustAllocate(big);
  EXPECT_EQ(stack.size, big);
  FreeStack(stack);
  const std::uint64_t maps_before = GetStackPoolStats().map_calls;
  Stack again = MustAllocate(big);
  EXPECT_EQ(again.low, stack.low);
  EXPECT_EQ(GetStackPoolStats().map_calls, maps_before);
  FreeStack(again);
}

TEST_F(StackPoolTest, StacksMoveBetweenThreadsWithoutLeaking) {
  ASSERT_EQ(GetStackPoolStats().mapped, 0u);
  std::vector<Stack> stacks;
  for (int i = 0; i < 1000; ++i) stacks.push_back(MustAllocate());
  std::thread([&] {
    for (const Stack& s : stacks) FreeStack(s);
  }).join();  // the thread's cache flushes into the global pool when it exits
  for (int i = 0; i < 1000; ++i) stacks[i] = MustAllocate();
  EXPECT_EQ(GetStackPoolStats().mapped, 1000u)
      << "stacks freed on another thread must be reused, not mapped again";
  for (const Stack& s : stacks) FreeStack(s);
  ReleasePooledStacks();
  EXPECT_EQ(GetStackPoolStats().mapped, 0u) << "every stack must be back in the pool";
}

TEST_F(StackPoolTest, ReleaseUnmapsEveryPooledStack) {
  std::vector<Stack> stacks;
  for (int i = 0; i < 100; ++i) stacks.push_back(MustAllocate());
  for (const Stack& s : stacks) FreeStack(s);
  ReleasePooledStacks();
  EXPECT_EQ(GetStackPoolStats().mapped, 0u);
}

// With MADV_GUARD_INSTALL a guard page costs no mapping, so vm.max_map_count does
// not cap the number of fibers; with mprotect each stack needs two mappings.
TEST_F(StackPoolTest, GuardPagesCostMappingsOnlyWithoutKernelGuardSupport) {
#ifdef WEFT_TSAN
  GTEST_SKIP() << "ThreadSanitizer adds mappings of its own for every mmap";
#endif
  FreeStack(MustAllocate());  // probes the guard mechanism
  const std::size_t before = CountMappings();
  std::vector<Stack> stacks;
  for (int i = 0; i < 1000; ++i) stacks.push_back(MustAllocate());
  const std::size_t growth = CountMappings() - before;
  if (GetStackPoolStats().guard_without_mapping) {
    EXPECT_LT(growth, 100u);
  } else {
    EXPECT_GE(growth, 1000u);
  }
  for (const Stack& s : stacks) FreeStack(s);
}

TEST_F(StackPoolTest, WritingBelowTheStackHitsTheGuardPage) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  Stack stack = MustAllocate();
  EXPECT_DEATH(
      {
        volatile char* below = stack.low - 1;
        *below = 1;
      },
      "");
  FreeStack(stack);
}

}  // namespace
}  // namespace weft::detail
