// No ready fiber waits for a worker while a worker of its group sleeps: every
// group gets as many group-local fibers as it has workers, each spinning until
// all of them run at once, so the round completes only if every worker was
// woken for its fiber. Plain threads spinning on every CPU (a "CPU hog") keep
// the workers from running when they please, which stretches every window of
// the wake-up protocol.
//
// The suite runs a few rounds of each shape; WEFT_WAKE_STRESS_ROUNDS=N in the
// environment runs N (the stress loop; thousands of rounds take minutes).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/sanitizers.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

struct Shape {
  const char* name;
  std::size_t workers;
  std::size_t group_size;  // 0: automatic
  bool spawner_is_fiber;
  bool chaos;
};

// Plain threads that spin on every CPU until destroyed.
class CpuHog {
 public:
  CpuHog() {
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i != cpus; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load(std::memory_order_relaxed)) {
        }
      });
    }
  }
  ~CpuHog() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

std::size_t Rounds() {
  if (const char* env = std::getenv("WEFT_WAKE_STRESS_ROUNDS")) {
    return std::strtoul(env, nullptr, 10);
  }
  return testing::Scaled(20, 3);
}

class WakeStressTest : public ::testing::TestWithParam<Shape> {};

TEST_P(WakeStressTest, EveryWorkerIsWokenForItsFiber) {
  const Shape& shape = GetParam();
#ifdef WEFT_TSAN
  // ThreadSanitizer intercepts every atomic access of the spinning fibers; with
  // dozens of spinning threads on two CPUs its runtime makes no progress worth
  // waiting for. The release and address-sanitizer runs cover these shapes.
  if (shape.workers > 16) GTEST_SKIP() << "too many spinning threads for ThreadSanitizer";
#endif
  CpuHog hog;
  for (std::size_t round = 0; round != Rounds(); ++round) {
    RuntimeOptions options;
    options.concurrency_hint = shape.workers;
    options.scheduling_group_size = shape.group_size;
    // A synthetic topology: the workers are not pinned, and the automatic
    // layout makes groups of at most 15 as on a large machine.
    options.topology = "pack:1 numa:1 core:" + std::to_string(shape.workers) + " pu:1";
    options.chaos_migration = shape.chaos;
    Runtime runtime(options);
    const RuntimeStats stats = GetRuntimeStats();
    const auto total = static_cast<int>(shape.workers);
    std::atomic<int> running{0};
    std::atomic<bool> give_up{false};
    auto start_all = [&] {
      for (std::size_t g = 0; g != stats.scheduling_groups.size(); ++g) {
        for (std::size_t k = 0; k != stats.scheduling_groups[g].workers.size(); ++k) {
          FiberAttributes attributes;
          attributes.scheduling_group = g;
          attributes.scheduling_group_local = true;
          ASSERT_TRUE(StartFiberDetached(attributes, [&] {
            running.fetch_add(1);
            while (running.load() < total && !give_up.load()) {
            }
          }));
        }
      }
    };
    if (shape.spawner_is_fiber) {
      // The spawner's worker is needed too: the spawner ends after starting them.
      FiberAttributes anywhere;
      anywhere.scheduling_group = kUnspecifiedSchedulingGroup;
      ASSERT_TRUE(StartFiberDetached(anywhere, start_all));
    } else {
      start_all();
    }
    const bool all_ran =
        testing::PollUntil([&] { return running.load() == total; },
                           "all " + std::to_string(total) + " fibers to run at once");
    if (!all_ran) {
      DumpRuntimeStats(std::cerr);
      give_up = true;
    }
    ASSERT_TRUE(all_ran) << "round " << round << ": " << running.load() << " of " << total
                         << " fibers ran; a ready fiber waited for a worker";
  }
}

// A fiber placed on the local run stack of a worker whose current fiber does
// not block is taken by another worker of the group even while that one is
// busy too (here with a fiber that keeps yielding, so it is never idle and
// never steals): stranded work does not wait for its worker.
TEST(StrandedLocalFibers, AreRescuedByABusyWorker) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  const std::size_t rounds = testing::Scaled(20, 5);
  for (std::size_t round = 0; round != rounds; ++round) {
    std::atomic<int> started{0};
    std::atomic<bool> child_ran{false};
    std::atomic<bool> give_up{false};
    Fiber yielder([&] {
      ++started;
      while (!child_ran.load() && !give_up.load()) this_fiber::Yield();
    });
    Fiber spinner([&] {
      ++started;
      // Both spin without blocking from here on, so each has a worker.
      while (started.load() != 2 && !give_up.load()) {
      }
      ASSERT_TRUE(StartFiberDetached([&] { child_ran = true; }));
      while (!child_ran.load() && !give_up.load()) {
      }
    });
    const bool ran = testing::PollUntil([&] { return child_ran.load(); }, "the child");
    give_up = true;
    spinner.Join();
    yielder.Join();
    ASSERT_TRUE(ran) << "round " << round << ": a fiber waited behind a fiber that "
                     << "never blocks while another worker was running";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WakeStressTest,
    ::testing::Values(Shape{"ThirtyTwoWorkersInThreeGroups", 32, 0, false, false},
                      Shape{"ThirtyTwoWorkersSpawnedByAFiber", 32, 0, true, false},
                      Shape{"GroupsOfOne", 8, 1, false, false},
                      Shape{"GroupsOfEight", 16, 8, false, false},
                      Shape{"GroupsOfFifteen", 30, 15, true, false},
                      Shape{"ThirtyTwoWorkersInChaosMode", 32, 0, false, true}),
    [](const ::testing::TestParamInfo<Shape>& info) { return info.param.name; });

}  // namespace
}  // namespace weft
