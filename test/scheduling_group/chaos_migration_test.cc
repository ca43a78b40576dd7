// Chaos mode (RuntimeOptions::chaos_migration, WEFT_CHAOS_MIGRATION): every time
// a fiber is made ready it resumes on a worker other than the one it last ran
// on, unless no other worker took it within kChaosPatience (counted).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using detail::ChaosFallbacks;
using detail::CurrentWorker;
using detail::FiberWorker;
using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::Scaled;
using testing::SumOverGroups;

RuntimeOptions ChaosOptions(std::size_t workers) {
  RuntimeOptions options = OptionsWithWorkers(workers);
  options.scheduling_group_size = workers;  // one group: no stealing in between
  options.chaos_migration = true;
  return options;
}

// Sets an environment variable for the scope, restoring the old value after.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnvironment() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Counts, over many resumptions, how often a fiber came back on the worker it
// left from.
struct Resumptions {
  int total = 0;
  int same_worker = 0;
  void Record(const FiberWorker* before, const FiberWorker* after) {
    ++total;
    same_worker += before == after ? 1 : 0;
  }
};

// Every resumption on the same worker must be one of the counted fallbacks, and
// with idle workers around, fibers do move.
void ExpectMigrated(const Resumptions& r, std::uint64_t fallbacks_before) {
  const std::uint64_t fallbacks = ChaosFallbacks() - fallbacks_before;
  EXPECT_LE(static_cast<std::uint64_t>(r.same_worker), fallbacks)
      << r.same_worker << " of " << r.total
      << " resumptions were on the fiber's previous worker, but only " << fallbacks
      << " fallbacks (no other worker within the patience) were counted";
  EXPECT_GT(r.total - r.same_worker, r.total / 2)
      << "only " << (r.total - r.same_worker) << " of " << r.total
      << " resumptions moved to another worker";
}

// Each test starts its own runtime, with chaos mode on, of GetParam() workers in
// one scheduling group.
class ChaosMigrationTest : public ::testing::TestWithParam<std::size_t> {};

// Where a fiber resumes after each of `yields` yields.
Resumptions YieldInAFiber(int yields) {
  Resumptions r;
  Fiber fiber([&] {
    for (int i = 0; i < yields; ++i) {
      FiberWorker* before = CurrentWorker();
      this_fiber::Yield();
      r.Record(before, CurrentWorker());
    }
  });
  fiber.Join();
  return r;
}

TEST_P(ChaosMigrationTest, YieldResumesOnAnotherWorker) {
  if (GetParam() < 2) GTEST_SKIP() << "a single worker has nowhere to send a fiber";
  Runtime runtime(ChaosOptions(GetParam()));
  const std::uint64_t fallbacks = ChaosFallbacks();
  ExpectMigrated(YieldInAFiber(500), fallbacks);
}

TEST_P(ChaosMigrationTest, SleepAndWakeUpResumeOnAnotherWorker) {
  if (GetParam() < 2) GTEST_SKIP() << "a single worker has nowhere to send a fiber";
  Runtime runtime(ChaosOptions(GetParam()));
  const std::uint64_t fallbacks = ChaosFallbacks();
  Resumptions slept, woken;
  Fiber sleeper([&] {
    for (int i = 0; i < 100; ++i) {
      const std::uint64_t fired = SumOverGroups(&SchedulingGroupStats::timers_fired);
      FiberWorker* before = CurrentWorker();
      this_fiber::SleepFor(std::chrono::microseconds(100));
      FiberWorker* after = CurrentWorker();
      // A deadline that passed before the fiber could park (a slow or preempted
      // run) returns at once, without a switch: count only the sleeps that
      // parked, whose timer fired (the count goes up before the fiber is woken).
      if (SumOverGroups(&SchedulingGroupStats::timers_fired) != fired) {
        slept.Record(before, after);
      }
    }
  });
  sleeper.Join();
  // Woken by another fiber, which would normally put it on the local run stack of
  // the waker's worker. The notifier sees `waiting` only once the waiter has
  // released the mutex inside wait(), i.e. is parked, and unlocks before it
  // notifies, so that the wake-up is the waiter's only way back.
  FiberMutex mutex;
  FiberConditionVariable cv;
  for (int i = 0; i < 100; ++i) {
    bool waiting = false;
    bool go = false;
    Fiber waiter([&] {
      std::unique_lock<FiberMutex> lock(mutex);
      waiting = true;
      FiberWorker* before = CurrentWorker();
      cv.wait(lock, [&] { return go; });
      woken.Record(before, CurrentWorker());
    });
    Fiber notifier([&] {
      for (;;) {
        std::unique_lock<FiberMutex> lock(mutex);
        if (waiting) {
          go = true;
          break;
        }
        lock.unlock();
        this_fiber::Yield();
      }
      cv.notify_one();
    });
    notifier.Join();
    waiter.Join();
  }
  ExpectMigrated(slept, fallbacks);
  ExpectMigrated(woken, fallbacks);
}

TEST_P(ChaosMigrationTest, ChildrenStartAwayFromTheirParent) {
  if (GetParam() < 2) GTEST_SKIP() << "a single worker has nowhere to send a fiber";
  Runtime runtime(ChaosOptions(GetParam()));
  const std::uint64_t fallbacks = ChaosFallbacks();
  Resumptions r;
  Fiber parent([&] {
    for (int i = 0; i < 200; ++i) {
      FiberWorker* parent_worker = CurrentWorker();
      FiberWorker* child_worker = nullptr;
      Fiber child([&] { child_worker = CurrentWorker(); });
      child.Join();
      r.Record(parent_worker, child_worker);
    }
  });
  parent.Join();
  ExpectMigrated(r, fallbacks);
}

// Nothing accepted is lost or run twice while every readiness moves threads.
TEST_P(ChaosMigrationTest, EveryFiberRunsExactlyOnce) {
  Runtime runtime(ChaosOptions(GetParam()));
  constexpr int kParents = 50;
  const int children = static_cast<int>(Scaled(200, 20));
  std::vector<std::atomic<int>> runs(kParents * children);
  FiberLatch done(kParents * children);
  for (int p = 0; p < kParents; ++p) {
    ASSERT_TRUE(StartFiberDetached([&, p] {
      for (int c = 0; c < children; ++c) {
        const bool started = StartFiberDetached([&, slot = p * children + c] {
          this_fiber::Yield();
          runs[slot].fetch_add(1);
          done.CountDown();
        });
        if (!started) {
          ADD_FAILURE() << "StartFiberDetached failed in a running runtime";
          done.CountDown();
        }
        if (c % 16 == 0) this_fiber::Yield();
      }
    }));
  }
  done.Wait();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    ASSERT_EQ(runs[i].load(), 1) << "fiber " << i;
  }
}

// A fiber that never blocks keeps its worker; another fiber whose only other
// worker is that one must still run (on its previous worker, counted).
TEST(ChaosMigration, BusyWorkersCannotStrandAFiber) {
  Runtime runtime(ChaosOptions(2));
  std::atomic<bool> release{false};
  std::atomic<bool> spinner_running{false};
  Fiber spinner([&] {
    spinner_running = true;
    while (!release.load()) {
      // Busy without blocking or yielding.
    }
  });
  ASSERT_TRUE(PollUntil([&] { return spinner_running.load(); }, "the spinning fiber"));
  Fiber worker([&] {
    for (int i = 0; i < 20; ++i) this_fiber::Yield();
    release = true;
  });
  worker.Join();
  spinner.Join();
}

TEST(ChaosMigration, EnvironmentVariableTurnsItOn) {
  ScopedEnvironment chaos("WEFT_CHAOS_MIGRATION", "1");
  RuntimeOptions options = OptionsWithWorkers(2);
  options.scheduling_group_size = 2;
  ASSERT_FALSE(options.chaos_migration);
  Runtime runtime(options);
  const std::uint64_t fallbacks = ChaosFallbacks();
  ExpectMigrated(YieldInAFiber(200), fallbacks);
}

TEST(ChaosMigration, BadEnvironmentValueIsRejectedBeforeStarting) {
  ScopedEnvironment chaos("WEFT_CHAOS_MIGRATION", "yes");
  try {
    StartRuntime(OptionsWithWorkers(2));
    TerminateRuntime();
    FAIL() << "StartRuntime accepted WEFT_CHAOS_MIGRATION=yes";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::strstr(e.what(), "WEFT_CHAOS_MIGRATION is \"yes\""), nullptr)
        << e.what();
    EXPECT_NE(std::strstr(e.what(), "set it to 1 or true"), nullptr) << e.what();
  }
  EXPECT_EQ(GetSchedulingGroupCount(), 0u);
}

TEST(ChaosMigration, StatsSayWhetherItIsOn) {
  ScopedEnvironment off("WEFT_CHAOS_MIGRATION", "0");  // whatever CI set
  {
    Runtime runtime(ChaosOptions(2));
    std::ostringstream out;
    DumpRuntimeStats(out);
    EXPECT_NE(out.str().find(", chaos migration on ("), std::string::npos) << out.str();
  }
  Runtime runtime(OptionsWithWorkers(2));
  std::ostringstream out;
  DumpRuntimeStats(out);
  EXPECT_EQ(out.str().find("chaos"), std::string::npos) << out.str();
}

TEST(ChaosMigration, OffByDefaultAndFromFlags) {
  EXPECT_FALSE(RuntimeOptions().chaos_migration);
  EXPECT_FALSE(RuntimeOptions::FromFlags().chaos_migration);
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(ChaosMigrationTest);

}  // namespace
}  // namespace weft
