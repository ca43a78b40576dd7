// A tree of fibers whose nodes start all their children before joining any
// (skynet's shape) unfolds depth first: the local run stack runs the newest
// child next, and its bottom (the shallowest waiting node, whose start begins
// a whole new subtree) is moved to the shared queue only after it has waited
// for a while. So only a few fibers per level and worker are alive at once,
// and the first tree of a fresh process touches few fresh stack pages.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft {
namespace {

constexpr int kFanOut = 10;

class FiberTreeTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    const char* chaos = std::getenv("WEFT_CHAOS_MIGRATION");
    if (chaos != nullptr && std::strcmp(chaos, "0") != 0) {
      // Chaos mode bypasses the local run stack on purpose: every start goes
      // through the queue, breadth first.
      GTEST_SKIP() << "chaos mode does not use the local run stack";
    }
    RuntimeOptions options;
    options.concurrency_hint = GetParam();
    StartRuntime(options);
    if (testing::RunningSchedulingPolicy() != "weft") {
      TerminateRuntime();
      GTEST_SKIP() << "depth first is what the weft policy's local run stacks give";
    }
  }
  void TearDown() override {
    if (!IsSkipped()) TerminateRuntime();
  }

  // The sum first .. first + leaves - 1, a fiber per node below the caller.
  // Counts a fiber from its creation (when its stack is taken) to its end.
  void Started() {
    const std::uint64_t now = alive_.fetch_add(1) + 1;
    std::uint64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }

  std::int64_t Tree(std::int64_t first, std::int64_t leaves) {
    std::int64_t sum = first;
    if (leaves > 1) {
      const std::int64_t share = leaves / kFanOut;
      std::int64_t sums[kFanOut];
      Fiber children[kFanOut];
      for (int i = 0; i < kFanOut; ++i) {
        Started();
        children[i] = Fiber([this, &sums, i, first, share] {
          sums[i] = Tree(first + i * share, share);
          alive_.fetch_sub(1);
        });
      }
      sum = 0;
      for (int i = 0; i < kFanOut; ++i) {
        children[i].Join();
        sum += sums[i];
      }
    }
    return sum;
  }

  std::atomic<std::uint64_t> alive_{0};
  std::atomic<std::uint64_t> peak_{0};
};

// 111,111 fibers (11,111 under sanitizers); with every node's ten children
// started before its first join, breadth first would keep most of them alive.
// Depth first keeps about (levels x fan-out) per worker, plus the subtrees that
// idle workers steal and the bottoms moved after kLocalPatience.
TEST_P(FiberTreeTest, ATreeUnfoldsDepthFirstWithFewFibersAlive) {
  const std::int64_t leaves = testing::kScaledDown ? 10'000 : 100'000;
  std::int64_t sum = 0;
  Fiber root([&] { sum = Tree(0, leaves); });
  root.Join();
  EXPECT_EQ(sum, leaves * (leaves - 1) / 2);
  // Measured at 100,000 leaves: 74-79 / 123-310 / 517-1,018 fibers alive at
  // the peak on 1 / 2 / 4 workers (idle workers steal whole subtrees); 10,759 /
  // 4,651 / 5,202 when a fiber that never ran went from the bottom of the local
  // run stack to the queue every 16 picks.
  EXPECT_LT(peak_.load(), 3000u) << "the tree did not unfold depth first";
}

INSTANTIATE_TEST_SUITE_P(Workers, FiberTreeTest, ::testing::Values(1, 2, 4),
                         [](const auto& info) {
                           return std::to_string(info.param) + "Workers";
                         });

}  // namespace
}  // namespace weft
