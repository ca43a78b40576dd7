// Tests runtime/fiber.h: starting, joining and detaching fibers.
#include "runtime/fiber.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::Scaled;
using testing::Watchdog;

class FiberTest : public testing::WorkerCountTest {};
WEFT_INSTANTIATE_OVER_WORKER_COUNTS(FiberTest);

TEST_P(FiberTest, StartFiberDetachedFromPlainThreadRunsTheCallable) {
  std::atomic<bool> ran{false};
  ASSERT_TRUE(StartFiberDetached([&ran] { ran = true; }));
  EXPECT_TRUE(PollUntil([&] { return ran.load(); }, "the detached fiber to run"));
}

TEST_P(FiberTest, StartFiberDetachedFromFiberRunsTheCallable) {
  std::atomic<bool> ran{false};
  Fiber parent([&ran] {
    EXPECT_TRUE(StartFiberDetached([&ran] { ran = true; }));
    EXPECT_TRUE(PollUntil([&] { return ran.load(); }, "the child fiber to run"));
  });
  parent.Join();
  EXPECT_TRUE(ran);
}

TEST_P(FiberTest, AcceptsMoveOnlyCallables) {
  std::atomic<int> seen{0};
  auto value = std::make_unique<int>(42);
  ASSERT_TRUE(StartFiberDetached([value = std::move(value), &seen] { seen = *value; }));
  ASSERT_TRUE(PollUntil([&] { return seen.load() != 0; }, "the move-only callable"));
  EXPECT_EQ(42, seen.load());

  int joined_seen = 0;
  Fiber fiber([value = std::make_unique<int>(7), &joined_seen] { joined_seen = *value; });
  fiber.Join();
  EXPECT_EQ(7, joined_seen);
}

TEST_P(FiberTest, CopiesLargeCallablesIntact) {
  std::array<std::uint8_t, 4096> bytes;
  for (std::size_t i = 0; i != bytes.size(); ++i)
    bytes[i] = static_cast<std::uint8_t>(i * 7);
  const auto intact = [](const std::array<std::uint8_t, 4096>& copy) {
    for (std::size_t i = 0; i != copy.size(); ++i) {
      if (copy[i] != static_cast<std::uint8_t>(i * 7)) return false;
    }
    return true;
  };

  std::atomic<int> result{0};  // 1 intact, 2 corrupted
  ASSERT_TRUE(
      StartFiberDetached([bytes, &intact, &result] { result = intact(bytes) ? 1 : 2; }));
  ASSERT_TRUE(PollUntil([&] { return result.load() != 0; }, "the large callable"));
  EXPECT_EQ(1, result.load()) << "the 4 KiB capture was corrupted";

  bool joined_intact = false;
  Fiber fiber([bytes, &intact, &joined_intact] { joined_intact = intact(bytes); });
  bytes.fill(0);  // the fiber has its own copy
  fiber.Join();
  EXPECT_TRUE(joined_intact);
}

TEST_P(FiberTest, DecayCopiesArgumentsLikeStdThread) {
  std::string text = "original";
  int target = 0;
  std::string seen_text;
  int seen_number = 0;
  int seen_pointee = 0;
  Fiber fiber(
      [&](std::string s, int n, std::unique_ptr<int> p, int& ref) {
        seen_text = s;
        seen_number = n;
        seen_pointee = *p;
        ref = 5;
      },
      text, 42, std::make_unique<int>(9), std::ref(target));
  text = "changed";  // the fiber holds a copy, taken before the constructor returned
  fiber.Join();
  EXPECT_EQ("original", seen_text);
  EXPECT_EQ(42, seen_number);
  EXPECT_EQ(9, seen_pointee);
  EXPECT_EQ(5, target) << "std::ref should pass a reference";
}

TEST_P(FiberTest, JoinFromPlainThreadWaitsForTheFiber) {
  // Plain (non-atomic) data: Join() must order the fiber's writes before it
  // returns, which ThreadSanitizer checks.
  std::vector<int> written;
  Fiber fiber([&written] {
    for (int i = 0; i != 10; ++i) {
      this_fiber::Yield();
      written.push_back(i);
    }
  });
  fiber.Join();
  EXPECT_FALSE(fiber.Joinable());
  EXPECT_EQ(10u, written.size());
}

TEST_P(FiberTest, JoinFromFiberWaitsForTheFiber) {
  std::vector<int> written;
  Fiber parent([&written] {
    Fiber child([&written] {
      for (int i = 0; i != 10; ++i) {
        this_fiber::Yield();
        written.push_back(i);
      }
    });
    child.Join();
    EXPECT_EQ(10u, written.size());
    written.push_back(10);
  });
  parent.Join();
  EXPECT_EQ(11u, written.size());
}

TEST_P(FiberTest, JoinFromManyPlainThreadsAtOnce) {
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  constexpr std::size_t joins = Scaled(200, 20);
  std::atomic<std::size_t> ran{0};
  for (int t = 0; t != kThreads; ++t) {
    threads.emplace_back([&ran] {
      for (std::size_t i = 0; i != joins; ++i) {
        Fiber fiber([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        fiber.Join();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(kThreads * joins, ran.load());
}

TEST_P(FiberTest, JoinReturnsForAFiberThatAlreadyFinished) {
  std::atomic<bool> done{false};
  Fiber fiber([&done] { done = true; });
  ASSERT_TRUE(PollUntil([&] { return done.load(); }, "the fiber to finish"));
  EXPECT_TRUE(fiber.Joinable()) << "a finished fiber stays joinable until joined";
  fiber.Join();
  EXPECT_FALSE(fiber.Joinable());
}

TEST_P(FiberTest, JoinableDetachAndMoveBehaveLikeStdThread) {
  Fiber empty;
  EXPECT_FALSE(empty.Joinable());

  std::atomic<int> ran{0};
  Fiber first([&ran] { ++ran; });
  EXPECT_TRUE(first.Joinable());

  Fiber moved(std::move(first));
  EXPECT_FALSE(first.Joinable());
  EXPECT_TRUE(moved.Joinable());

  empty = std::move(moved);  // assigning into a non-joinable Fiber is allowed
  EXPECT_FALSE(moved.Joinable());
  EXPECT_TRUE(empty.Joinable());
  empty.Join();
  EXPECT_EQ(1, ran.load());

  Fiber detached([&ran] {
    this_fiber::Yield();
    ++ran;
  });
  detached.Detach();
  EXPECT_FALSE(detached.Joinable());
  EXPECT_TRUE(PollUntil([&] { return ran.load() == 2; }, "the detached fiber to run"));

  std::vector<Fiber> fibers;  // vector growth moves Fibers around
  for (int i = 0; i != 100; ++i) fibers.emplace_back([&ran] { ++ran; });
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(102, ran.load());
}

// Like std::thread::get_id: the handle's id is the one the fiber sees itself,
// distinct per fiber, and empty (0) once the handle is not joinable.
TEST_P(FiberTest, GetIdMatchesTheFibersOwnIdUntilJoinOrDetach) {
  std::atomic<std::uint64_t> own_ids[2] = {{0}, {0}};
  std::atomic<bool> go{false};
  Fiber first([&] {
    own_ids[0] = this_fiber::GetId();
    testing::WaitOrAbort(testing::PollUntil([&] { return go.load(); }, "the test"));
  });
  Fiber second([&] { own_ids[1] = this_fiber::GetId(); });
  const std::uint64_t first_id = first.GetId();
  const std::uint64_t second_id = second.GetId();
  EXPECT_NE(first_id, 0u);
  EXPECT_NE(first_id, second_id);
  go = true;
  first.Join();
  second.Join();
  EXPECT_EQ(own_ids[0].load(), first_id);
  EXPECT_EQ(own_ids[1].load(), second_id);
  EXPECT_EQ(first.GetId(), 0u) << "a joined handle has no id";
  Fiber detached([] {});
  EXPECT_NE(detached.GetId(), 0u);
  detached.Detach();
  EXPECT_EQ(detached.GetId(), 0u);
  EXPECT_EQ(Fiber().GetId(), 0u);
}

TEST_P(FiberTest, DispatchFromPlainThreadStillRunsTheFiber) {
  FiberAttributes attrs;
  attrs.launch_policy = Launch::kDispatch;
  std::atomic<bool> ran{false};
  ASSERT_TRUE(StartFiberDetached(attrs, [&ran] { ran = true; }));
  EXPECT_TRUE(PollUntil([&] { return ran.load(); }, "the dispatched fiber"));

  bool joined_ran = false;
  Fiber fiber(attrs, [&joined_ran] { joined_ran = true; });
  fiber.Join();
  EXPECT_TRUE(joined_ran);
}

TEST_P(FiberTest, RunsWithALargerPerFiberStack) {
  FiberAttributes attrs;
  attrs.stack_size = 1 << 20;
  std::uint64_t sum = 0;
  Fiber fiber(attrs, [&sum] {
    volatile std::uint8_t big[512 * 1024];
    for (std::size_t i = 0; i < sizeof(big); i += 512)
      big[i] = static_cast<std::uint8_t>(i >> 9);
    big[sizeof(big) - 1] = 1;
    for (std::size_t i = 0; i < sizeof(big); i += 512) sum += big[i];
    sum += big[sizeof(big) - 1];
  });
  fiber.Join();
  std::uint64_t expected = 1;
  for (std::size_t i = 0; i < 512 * 1024; i += 512)
    expected += static_cast<std::uint8_t>(i >> 9);
  EXPECT_EQ(expected, sum);
}

TEST_P(FiberTest, BatchStartRunsEveryCallableExactlyOnce) {
  constexpr std::size_t fibers = Scaled(1000, 50);
  std::vector<std::atomic<int>> runs(fibers);
  std::vector<std::function<void()>> fns;
  for (std::size_t i = 0; i != fibers; ++i) {
    fns.emplace_back([&runs, i] { runs[i].fetch_add(1, std::memory_order_relaxed); });
  }
  ASSERT_TRUE(BatchStartFiberDetached(std::move(fns)));
  EXPECT_TRUE(BatchStartFiberDetached({}));  // nothing to start is a success

  // And from a fiber.
  std::vector<std::atomic<int>> nested_runs(fibers);
  Fiber starter([&nested_runs] {
    std::vector<std::function<void()>> nested;
    for (std::size_t i = 0; i != fibers; ++i) {
      nested.emplace_back([&nested_runs, i] { ++nested_runs[i]; });
    }
    EXPECT_TRUE(BatchStartFiberDetached(std::move(nested)));
  });
  starter.Join();

  TerminateRuntime();  // waits for the batch: nothing can run later
  for (std::size_t i = 0; i != fibers; ++i) {
    ASSERT_EQ(1, runs[i].load()) << "callable " << i;
    ASSERT_EQ(1, nested_runs[i].load()) << "nested callable " << i;
  }
}

std::uint64_t FibersCreatedInGroup(std::size_t group) {
  const RuntimeStats stats = GetRuntimeStats();
  return group < stats.scheduling_groups.size()
             ? stats.scheduling_groups[group].fibers_created
             : 0;
}

TEST_P(FiberTest, ExplicitSchedulingGroupIndexPlacesTheFiberInThatGroup) {
  const std::size_t groups = GetSchedulingGroupCount();
  ASSERT_GE(groups, 1u);
  std::atomic<std::size_t> ran{0};
  for (std::size_t group = 0; group != groups; ++group) {
    const std::uint64_t created_before = FibersCreatedInGroup(group);
    FiberAttributes attrs;
    attrs.scheduling_group = group;
    ASSERT_TRUE(StartFiberDetached(attrs, [&ran] { ++ran; })) << "group " << group;
    attrs.scheduling_group_local = true;
    Fiber fiber(attrs, [&ran] { ++ran; });
    fiber.Join();
    EXPECT_TRUE(
        PollUntil([&] { return FibersCreatedInGroup(group) >= created_before + 2; },
                  "group " + std::to_string(group) + " to count its fibers"));
  }
  FiberAttributes any;
  any.scheduling_group = kUnspecifiedSchedulingGroup;
  Fiber fiber(any, [&ran] { ++ran; });
  fiber.Join();
  EXPECT_TRUE(PollUntil([&] { return ran.load() == 2 * groups + 1; }, "every fiber"));
}

TEST_P(FiberTest, DetachedFibersThatSpawnChildrenAllRunExactlyOnce) {
  constexpr std::size_t parents = Scaled(100000);
  // Bounds live fibers so that stacks (two mappings each with guard pages) stay
  // well below vm.max_map_count; the window is large enough to keep every worker
  // busy.
  constexpr std::size_t kMaxInFlight = 8192;
  std::vector<std::atomic<int>> runs(2 * parents);
  std::atomic<std::size_t> finished{0};
  for (std::size_t i = 0; i != parents; ++i) {
    // 2 * i fibers have been started so far.
    if (2 * i >= finished.load(std::memory_order_relaxed) + kMaxInFlight) {
      ASSERT_TRUE(PollUntil([&] { return 2 * i < finished.load() + kMaxInFlight; },
                            "fibers to finish"))
          << finished.load() << " finished of " << 2 * i << " started";
    }
    ASSERT_TRUE(StartFiberDetached([&runs, &finished, i] {
      runs[i].fetch_add(1, std::memory_order_relaxed);
      EXPECT_TRUE(StartFiberDetached([&runs, &finished, i] {
        runs[parents + i].fetch_add(1, std::memory_order_relaxed);
        finished.fetch_add(1, std::memory_order_relaxed);
      }));
      finished.fetch_add(1, std::memory_order_relaxed);
    })) << "fiber "
        << i;
  }
  {
    Watchdog watchdog("TerminateRuntime() after the fiber stress");
    TerminateRuntime();
  }
  EXPECT_EQ(2 * parents, finished.load());
  for (std::size_t i = 0; i != runs.size(); ++i) {
    ASSERT_EQ(1, runs[i].load()) << (i < parents ? "parent " : "child ") << i % parents;
  }
}

// Each fiber below `depth` starts two joinable children and returns the sum of
// theirs; a leaf returns its index among the leaves.
std::uint64_t SumLeaves(int depth, std::uint64_t index) {
  if (depth == 0) return index;
  std::uint64_t left = 0;
  std::uint64_t right = 0;
  Fiber a([&left, depth, index] { left = SumLeaves(depth - 1, 2 * index); });
  Fiber b([&right, depth, index] { right = SumLeaves(depth - 1, 2 * index + 1); });
  a.Join();
  b.Join();
  return left + right;
}

TEST_P(FiberTest, TreeOfJoinsAddsUpEveryLeaf) {
  constexpr int kDepth = testing::kScaledDown ? 7 : 10;
  constexpr std::uint64_t kLeaves = 1u << kDepth;
  std::uint64_t sum = 0;
  Fiber root([&sum] { sum = SumLeaves(kDepth, 0); });
  root.Join();
  EXPECT_EQ(kLeaves * (kLeaves - 1) / 2, sum);
}

TEST(FiberWithoutRuntime, CannotBeStarted) {
  auto owned = std::make_shared<int>(1);
  bool ran = false;
  EXPECT_FALSE(StartFiberDetached([owned, &ran] { ran = true; }));
  EXPECT_FALSE(BatchStartFiberDetached({[&ran] { ran = true; }}));
  try {
    Fiber fiber([owned, &ran] { ran = true; });
    ADD_FAILURE() << "a Fiber was created without a runtime";
    fiber.Join();
  } catch (const std::system_error& e) {
    EXPECT_EQ(std::make_error_code(std::errc::operation_not_permitted), e.code())
        << e.what();
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(1, owned.use_count()) << "a refused callable was leaked";

  // Nor after a runtime has come and gone.
  StartRuntime(OptionsWithWorkers(1));
  TerminateRuntime();
  EXPECT_FALSE(StartFiberDetached([&ran] { ran = true; }));
  EXPECT_THROW(Fiber([&ran] { ran = true; }), std::system_error);
  EXPECT_FALSE(ran);
}

TEST(FiberDispatch, RunsTheNewFiberBeforeTheCallerContinues) {
  Runtime runtime(OptionsWithWorkers(1));
  std::vector<int> order;  // one worker: no concurrent access
  Fiber caller([&order] {
    FiberAttributes attrs;
    attrs.launch_policy = Launch::kDispatch;
    EXPECT_TRUE(StartFiberDetached(attrs, [&order] { order.push_back(1); }));
    order.push_back(2);
    Fiber joinable(attrs, [&order] { order.push_back(3); });
    order.push_back(4);
    joinable.Join();
  });
  caller.Join();
  EXPECT_EQ((std::vector<int>{1, 2, 3, 4}), order);
}

TEST(FiberPost, LetsTheCallerContinueFirst) {
  Runtime runtime(OptionsWithWorkers(1));
  std::vector<int> order;  // one worker: no concurrent access
  Fiber caller([&order] {
    EXPECT_TRUE(StartFiberDetached([&order] { order.push_back(2); }));
    order.push_back(1);
    EXPECT_EQ(std::vector<int>{1}, order)
        << "a posted fiber ran before its caller went on";
  });
  caller.Join();
  TerminateRuntime();
  EXPECT_EQ((std::vector<int>{1, 2}), order);
}

class FiberDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { ::testing::FLAGS_gtest_death_test_style = "threadsafe"; }
};

TEST_F(FiberDeathTest, DestroyingAJoinableFiberAborts) {
  EXPECT_DEATH(
      {
        Runtime runtime(OptionsWithWorkers(1));
        Fiber fiber([] {});
      },
      "joinable");
}

TEST_F(FiberDeathTest, AssigningOverAJoinableFiberAborts) {
  EXPECT_DEATH(
      {
        Runtime runtime(OptionsWithWorkers(1));
        Fiber fiber([] {});
        fiber = Fiber([] {});
      },
      "joinable");
}

TEST_F(FiberDeathTest, JoiningANonJoinableFiberAborts) {
  EXPECT_DEATH(
      {
        Fiber fiber;
        fiber.Join();
      },
      "");
}

TEST_F(FiberDeathTest, AnExceptionEscapingADetachedFiberTerminatesNamingIt) {
  EXPECT_DEATH(
      {
        Runtime runtime(OptionsWithWorkers(2));
        StartFiberDetached([] { throw std::runtime_error("weft-test-exception-4711"); });
      },
      "weft-test-exception-4711");
}

TEST_F(FiberDeathTest, AnExceptionEscapingAJoinableFiberTerminatesNamingIt) {
  EXPECT_DEATH(
      {
        Runtime runtime(OptionsWithWorkers(1));
        Fiber fiber([] { throw std::logic_error("weft-test-exception-815"); });
        fiber.Join();
      },
      "weft-test-exception-815");
}

}  // namespace
}  // namespace weft
