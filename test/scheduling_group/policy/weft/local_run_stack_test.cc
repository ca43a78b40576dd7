// LocalRunStack: newest first for its owner, oldest first for thieves, growth
// that keeps the order, and nothing lost or taken twice under concurrent thieves.
#include "runtime/scheduling_group/policy/weft/local_run_stack.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_semaphore.h"
#include "test/test_util.h"

namespace weft::detail {
namespace {

using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::Scaled;

TEST(LocalRunStack, OwnerTakesNewestThievesTakeOldest) {
  LocalRunStack<int> stack;
  int items[4] = {0, 1, 2, 3};
  EXPECT_EQ(stack.PopNewest(), nullptr);
  EXPECT_EQ(stack.PopOldest(), nullptr);
  for (int& item : items) stack.Push(&item);
  EXPECT_EQ(stack.size(), 4u);
  EXPECT_EQ(stack.PopNewest(), &items[3]);
  EXPECT_EQ(stack.PopOldest(), &items[0]);
  EXPECT_EQ(stack.PopNewest(), &items[2]);
  EXPECT_EQ(stack.PopOldest(), &items[1]);
  EXPECT_EQ(stack.size(), 0u);
  EXPECT_EQ(stack.PopNewest(), nullptr);
}

TEST(LocalRunStack, PopOldestLeavesALoneItemWhenAskedTo) {
  LocalRunStack<int> stack;
  int a = 0, b = 1;
  stack.Push(&a);
  EXPECT_EQ(stack.PopOldest(/*at_least=*/2), nullptr);
  stack.Push(&b);
  EXPECT_EQ(stack.PopOldest(/*at_least=*/2), &a);
  EXPECT_EQ(stack.PopOldest(/*at_least=*/2), nullptr);
  EXPECT_EQ(stack.PopNewest(), &b);
}

TEST(LocalRunStack, GenerationCountsPushes) {
  LocalRunStack<int> stack;
  int a = 0;
  const std::uint64_t before = stack.generation();
  stack.Push(&a);
  stack.PopNewest();
  EXPECT_EQ(stack.generation(), before + 1);
}

TEST(LocalRunStack, GrowingKeepsTheOrderAcrossTheRingsEnd) {
  LocalRunStack<int> stack;
  std::vector<int> items(1000);
  // Move the ring's start away from index 0 before it grows.
  for (int i = 0; i < 40; ++i) stack.Push(&items[i]);
  for (int i = 0; i < 30; ++i) ASSERT_EQ(stack.PopOldest(), &items[i]);
  for (int i = 40; i < 1000; ++i) stack.Push(&items[i]);
  for (int i = 30; i < 500; ++i) ASSERT_EQ(stack.PopOldest(), &items[i]) << i;
  for (int i = 999; i >= 500; --i) ASSERT_EQ(stack.PopNewest(), &items[i]) << i;
  EXPECT_EQ(stack.PopNewest(), nullptr);
}

// The owner pushes and pops while thieves pop the oldest: every item comes out
// exactly once.
TEST(LocalRunStack, ConcurrentThievesLoseNothingAndTakeNothingTwice) {
  LocalRunStack<int> stack;
  const int n = static_cast<int>(Scaled(200000, 20000));
  std::vector<int> items(n);
  std::vector<std::atomic<int>> taken(n);
  std::atomic<bool> done{false};
  auto take = [&](int* item) { taken[item - items.data()].fetch_add(1); };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 2; ++t) {
    thieves.emplace_back([&] {
      while (!done.load()) {
        if (int* item = stack.PopOldest()) take(item);
      }
    });
  }
  for (int i = 0; i < n; ++i) {
    stack.Push(&items[i]);
    if (i % 3 == 0) {
      if (int* item = stack.PopNewest()) take(item);
    }
  }
  while (int* item = stack.PopNewest()) take(item);
  done = true;
  for (std::thread& thief : thieves) thief.join();
  while (int* item = stack.PopOldest()) take(item);
  for (int i = 0; i < n; ++i) ASSERT_EQ(taken[i].load(), 1) << "item " << i;
}

// What the worker does with the stack: fibers a fiber starts run newest first.
TEST(LocalRunStackScheduling, ChildrenRunNewestFirstOnOneWorker) {
  Runtime runtime(OptionsWithWorkers(1));
  if (testing::RunningSchedulingPolicy() != "weft") {
    GTEST_SKIP() << "a property of the weft policy's local run stacks";
  }
  std::vector<int> order;
  Fiber parent([&] {
    std::vector<Fiber> children;
    for (int i = 0; i < 5; ++i)
      children.emplace_back([&order, i] { order.push_back(i); });
    for (Fiber& child : children) child.Join();
  });
  parent.Join();
  EXPECT_EQ(order, (std::vector<int>{4, 3, 2, 1, 0}));
}

// A tree whose nodes start all their children before joining any runs depth
// first: few of its fibers are alive at once (breadth first, the whole bottom
// level would be).
void Node(int depth, std::atomic<int>* alive, std::atomic<int>* most_alive) {
  const int now = alive->fetch_add(1) + 1;
  int most = most_alive->load();
  while (now > most && !most_alive->compare_exchange_weak(most, now)) {
  }
  if (depth > 0) {
    std::vector<Fiber> children;
    for (int i = 0; i < 10; ++i)
      children.emplace_back(Node, depth - 1, alive, most_alive);
    for (Fiber& child : children) child.Join();
  }
  alive->fetch_sub(1);
}

TEST(LocalRunStackScheduling, TreesRunDepthFirst) {
  Runtime runtime(OptionsWithWorkers(1));
  if (testing::RunningSchedulingPolicy() != "weft") {
    GTEST_SKIP() << "a property of the weft policy's local run stacks";
  }
  std::atomic<int> alive{0};
  std::atomic<int> most_alive{0};
  Fiber root(Node, 4, &alive, &most_alive);  // 11,111 fibers, 10,000 leaves
  root.Join();
  EXPECT_EQ(alive.load(), 0);
  // Breadth first (a FIFO queue), every one of the 1,111 inner nodes would be
  // waiting in Join() while the leaves run. Depth first, a path from the root
  // and the siblings started along it are; the fairness rule (the oldest local
  // fiber goes to the shared queue every 17 picks) starts a few more subtrees
  // early, which made 177 here.
  EXPECT_LE(most_alive.load(), 500);
}

// Two fibers that hand a token back and forth on one worker keep the stack's
// top busy; a fiber waiting at its bottom must still run.
TEST(LocalRunStackScheduling, HandOffsCannotStarveTheBottomOfTheStack) {
  Runtime runtime(OptionsWithWorkers(1));
  std::atomic<bool> bottom_ran{false};
  FiberSemaphore to_a(0), to_b(0);
  Fiber starter([&] {
    // Pushed first: it sits below the two that start next.
    Fiber bottom([&] { bottom_ran = true; });
    // Each leaves once it sees the bottom fiber ran, releasing the other.
    Fiber a([&] {
      for (;;) {
        to_b.Release();
        to_a.Acquire();
        if (bottom_ran.load()) break;
      }
      to_b.Release();
    });
    Fiber b([&] {
      for (;;) {
        to_b.Acquire();
        if (bottom_ran.load()) break;
        to_a.Release();
      }
      to_a.Release();
    });
    bottom.Join();
    a.Join();
    b.Join();
  });
  testing::WaitOrAbort(PollUntil([&] { return bottom_ran.load(); }, "the bottom fiber"));
  starter.Join();
}

}  // namespace
}  // namespace weft::detail
