// Tests runtime/runtime.h: option validation, FromFlags, start/terminate, stats.
#include "runtime/runtime.h"

#include <gflags/gflags.h>
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/flags.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::CountThreads;
using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::Scaled;

// The CPUs this process may run on, e.g. "0-1" on a 2-CPU machine, as a list.
std::string AffinityCpuList() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(0, sched_getaffinity(0, sizeof(set), &set));
  std::string list;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    list += (list.empty() ? "" : ",") + std::to_string(cpu);
  }
  return list;
}

struct TotalStats {
  std::size_t groups = 0;
  std::size_t workers = 0;
  std::uint64_t created = 0;
  std::uint64_t finished = 0;
  std::uint64_t alive = 0;
  std::uint64_t overflows = 0;
};

TotalStats SumStats(const RuntimeStats& stats) {
  TotalStats total;
  for (const SchedulingGroupStats& group : stats.scheduling_groups) {
    ++total.groups;
    total.workers += group.workers.size();
    total.created += group.fibers_created;
    total.finished += group.fibers_finished;
    total.alive += group.fibers_alive;
    total.overflows += group.run_queue_overflows;
  }
  return total;
}

void ExpectRuntimeNotRunning() {
  EXPECT_EQ(0u, GetSchedulingGroupCount());
  EXPECT_FALSE(IsRunningInFiberWorker());
  EXPECT_TRUE(GetRuntimeStats().scheduling_groups.empty());
  bool ran = false;
  EXPECT_FALSE(StartFiberDetached([&ran] { ran = true; }));
  EXPECT_FALSE(ran);
}

struct InvalidOptionCase {
  const char* name;  // test name suffix
  std::function<void(RuntimeOptions&)> spoil;
  const char* option;  // must appear in what()
  // False where only StartRuntime can tell (it needs the machine's CPUs or hwloc).
  bool detected_by_validate;
};

class InvalidRuntimeOptionsTest : public ::testing::TestWithParam<InvalidOptionCase> {};

TEST_P(InvalidRuntimeOptionsTest, ThrowInvalidArgumentNamingTheOptionAndStartNothing) {
  RuntimeOptions options = OptionsWithWorkers(2);
  GetParam().spoil(options);
  const int threads_before = CountThreads();
  try {
    StartRuntime(options);
    ADD_FAILURE() << "StartRuntime accepted an invalid " << GetParam().option;
    TerminateRuntime();
    return;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().option), std::string::npos)
        << "what() does not name the option: " << e.what();
  }
  EXPECT_EQ(threads_before, CountThreads()) << "a thread was started (or leaked)";
  ExpectRuntimeNotRunning();

  if (GetParam().detected_by_validate) {
    EXPECT_THROW(options.Validate(), std::invalid_argument);
  }
  // The failed start leaves nothing behind: a valid start works afterwards.
  StartRuntime(OptionsWithWorkers(1));
  EXPECT_EQ(1u, GetSchedulingGroupCount());
  TerminateRuntime();
}

INSTANTIATE_TEST_SUITE_P(
    Options, InvalidRuntimeOptionsTest,
    ::testing::Values(
        InvalidOptionCase{"RunQueueSizeNotAPowerOfTwo",
                          [](RuntimeOptions& o) { o.run_queue_size = 1000; },
                          "run_queue_size", true},
        InvalidOptionCase{"RunQueueSizeZero",
                          [](RuntimeOptions& o) { o.run_queue_size = 0; },
                          "run_queue_size", true},
        InvalidOptionCase{"RunQueueSizeOne",
                          [](RuntimeOptions& o) { o.run_queue_size = 1; },
                          "run_queue_size", true},
        InvalidOptionCase{"RunQueueSizeAboveMaximum",
                          [](RuntimeOptions& o) { o.run_queue_size = 1u << 25; },
                          "run_queue_size", true},
        InvalidOptionCase{"StackSizeBelow16KiB",
                          [](RuntimeOptions& o) { o.stack_size = 16383; }, "stack_size",
                          true},
        InvalidOptionCase{"StackSizeOne", [](RuntimeOptions& o) { o.stack_size = 1; },
                          "stack_size", true},
        InvalidOptionCase{"StackSizeAbove1GiB",
                          [](RuntimeOptions& o) { o.stack_size = std::size_t{2} << 30; },
                          "stack_size", true},
        InvalidOptionCase{"SchedulingGroupSizeAbove64",
                          [](RuntimeOptions& o) { o.scheduling_group_size = 65; },
                          "scheduling_group_size", true},
        InvalidOptionCase{"ConcurrencyHintAbove1024",
                          [](RuntimeOptions& o) { o.concurrency_hint = 1025; },
                          "concurrency_hint", true},
        InvalidOptionCase{"AccessibleCpusNotNumbers",
                          [](RuntimeOptions& o) { o.accessible_cpus = "a-b"; },
                          "accessible_cpus", true},
        InvalidOptionCase{"AccessibleCpusDescendingRange",
                          [](RuntimeOptions& o) { o.accessible_cpus = "3-1"; },
                          "accessible_cpus", true},
        InvalidOptionCase{"AccessibleCpusEmptyItem",
                          [](RuntimeOptions& o) { o.accessible_cpus = "0,,2"; },
                          "accessible_cpus", true},
        InvalidOptionCase{"AccessibleCpusOutsideTheAffinityMask",
                          [](RuntimeOptions& o) { o.accessible_cpus = "4000"; },
                          "accessible_cpus", false},
        InvalidOptionCase{"SchedulingPolicyUnknown",
                          [](RuntimeOptions& o) { o.scheduling_policy = "v9"; },
                          "scheduling_policy", true},
        InvalidOptionCase{"SchedulingPolicyEmpty",
                          [](RuntimeOptions& o) { o.scheduling_policy.clear(); },
                          "scheduling_policy", true},
        InvalidOptionCase{"TopologyMalformed",
                          [](RuntimeOptions& o) { o.topology = "pack:banana core"; },
                          "topology", false}),
    [](const ::testing::TestParamInfo<InvalidOptionCase>& info) {
      return std::string(info.param.name);
    });

TEST(RuntimeOptions, AcceptBoundaryValues) {
  RuntimeOptions options;
  options.run_queue_size = 2;
  options.stack_size = 16384;
  options.scheduling_group_size = 64;
  options.concurrency_hint = 1024;
  EXPECT_NO_THROW(options.Validate());
  options.run_queue_size = 16777216;
  options.stack_size = std::size_t{1} << 30;
  options.scheduling_group_size = 1;
  options.concurrency_hint = 0;
  EXPECT_NO_THROW(options.Validate());
}

// The defaults API.md documents for the options and their flags.
void ExpectDocumentedDefaults(const RuntimeOptions& options) {
  EXPECT_EQ(0u, options.concurrency_hint);
  EXPECT_EQ(0u, options.scheduling_group_size);
  EXPECT_TRUE(options.numa_aware);
  EXPECT_EQ(16u, options.work_stealing_ratio);
  EXPECT_EQ(0u, options.cross_numa_work_stealing_ratio);
  EXPECT_EQ(65536u, options.run_queue_size);
  EXPECT_EQ(131072u, options.stack_size);
  EXPECT_TRUE(options.stack_guard_page);
  EXPECT_EQ("", options.accessible_cpus);
  EXPECT_FALSE(options.disallow_cpu_migration);
  EXPECT_EQ("", options.topology);
}

TEST(RuntimeOptions, DefaultsAreTheDocumentedOnes) {
  const RuntimeOptions options;
  ExpectDocumentedDefaults(options);
  EXPECT_NO_THROW(options.Validate());
}

TEST(RuntimeOptions, FromFlagsReturnsTheDocumentedDefaults) {
  ExpectDocumentedDefaults(RuntimeOptions::FromFlags());
}

TEST(RuntimeOptions, FromFlagsReadsEveryFlag) {
  gflags::FlagSaver saver;  // restores every flag when the test ends
  FLAGS_weft_concurrency_hint = 3;
  FLAGS_weft_scheduling_group_size = 2;
  FLAGS_weft_numa_aware = false;
  FLAGS_weft_work_stealing_ratio = 7;
  FLAGS_weft_cross_numa_work_stealing_ratio = 9;
  FLAGS_weft_fiber_run_queue_size = 1024;
  FLAGS_weft_fiber_stack_size = 262144;
  FLAGS_weft_fiber_stack_enable_guard_page = false;
  FLAGS_weft_fiber_worker_accessible_cpus = "0";
  FLAGS_weft_fiber_worker_disallow_cpu_migration = true;
  FLAGS_weft_topology = "pack:1 numa:1 core:2 pu:1";
  FLAGS_weft_stats_log_interval_ms = 1500;

  const RuntimeOptions options = RuntimeOptions::FromFlags();
  EXPECT_EQ(3u, options.concurrency_hint);
  EXPECT_EQ(2u, options.scheduling_group_size);
  EXPECT_FALSE(options.numa_aware);
  EXPECT_EQ(7u, options.work_stealing_ratio);
  EXPECT_EQ(9u, options.cross_numa_work_stealing_ratio);
  EXPECT_EQ(1024u, options.run_queue_size);
  EXPECT_EQ(262144u, options.stack_size);
  EXPECT_FALSE(options.stack_guard_page);
  EXPECT_EQ("0", options.accessible_cpus);
  EXPECT_TRUE(options.disallow_cpu_migration);
  EXPECT_EQ("pack:1 numa:1 core:2 pu:1", options.topology);
  EXPECT_EQ(1500u, options.stats_log_interval_ms);
}

TEST(Runtime, StartsOnEveryCpuOfTheAffinityMaskListedExplicitly) {
  RuntimeOptions options = OptionsWithWorkers(2);
  options.accessible_cpus = AffinityCpuList();
  StartRuntime(options);
  std::atomic<bool> ran{false};
  ASSERT_TRUE(StartFiberDetached([&ran] { ran = true; }));
  TerminateRuntime();
  EXPECT_TRUE(ran);
}

TEST(Runtime, StartsAndTerminatesRepeatedlyRunningFibersEachTime) {
  constexpr int kCycles = 20;
  const int fibers_per_cycle = static_cast<int>(Scaled(100, 10));
  for (int cycle = 0; cycle != kCycles; ++cycle) {
    StartRuntime(OptionsWithWorkers(1 + cycle % 4));
    ASSERT_GE(GetSchedulingGroupCount(), 1u) << "cycle " << cycle;
    std::atomic<int> ran{0};
    for (int i = 0; i != fibers_per_cycle; ++i) {
      ASSERT_TRUE(StartFiberDetached([&ran] {
        this_fiber::Yield();
        ran.fetch_add(1, std::memory_order_relaxed);
      })) << "cycle "
          << cycle;
    }
    Fiber joined([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    joined.Join();
    TerminateRuntime();
    EXPECT_EQ(fibers_per_cycle + 1, ran.load()) << "cycle " << cycle;
    EXPECT_EQ(0u, GetSchedulingGroupCount()) << "cycle " << cycle;
  }
}

TEST(Runtime, RaiiObjectStartsAndTerminatesTheRuntime) {
  std::atomic<int> ran{0};
  {
    Runtime runtime(OptionsWithWorkers(2));
    EXPECT_GE(GetSchedulingGroupCount(), 1u);
    for (int i = 0; i != 100; ++i) {
      ASSERT_TRUE(StartFiberDetached([&ran] {
        this_fiber::Yield();
        ++ran;
      }));
    }
  }
  EXPECT_EQ(100, ran.load());
  ExpectRuntimeNotRunning();
}

TEST(Runtime, TerminateIsANoOpWhenNotRunning) {
  TerminateRuntime();
  TerminateRuntime();
  ExpectRuntimeNotRunning();
}

TEST(Runtime, TerminateWaitsForRunningAndReadyFibers) {
  StartRuntime(OptionsWithWorkers(4));
  const int fibers = static_cast<int>(Scaled(1000, 50));
  std::atomic<int> finished{0};
  for (int i = 0; i != fibers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&finished] {
      for (int y = 0; y != 5; ++y) this_fiber::Yield();
      finished.fetch_add(1, std::memory_order_relaxed);
    }));
  }
  TerminateRuntime();
  EXPECT_EQ(fibers, finished.load());
}

TEST(Runtime, TerminateWaitsForFibersStartedByFinishingFibers) {
  StartRuntime(OptionsWithWorkers(2));
  const int parents = static_cast<int>(Scaled(200, 20));
  std::atomic<int> children{0};
  for (int i = 0; i != parents; ++i) {
    ASSERT_TRUE(StartFiberDetached([&children] {
      this_fiber::Yield();
      EXPECT_TRUE(StartFiberDetached([&children] {
        for (int y = 0; y != 3; ++y) this_fiber::Yield();
        children.fetch_add(1, std::memory_order_relaxed);
      }));
    }));
  }
  TerminateRuntime();
  EXPECT_EQ(parents, children.load());
}

TEST(Runtime, TerminateWaitsForFibersBlockedInJoin) {
  StartRuntime(OptionsWithWorkers(2));
  constexpr int kJoiners = 50;
  std::atomic<int> joined{0};
  for (int i = 0; i != kJoiners; ++i) {
    ASSERT_TRUE(StartFiberDetached([&joined] {
      Fiber child([] {
        for (int y = 0; y != 100; ++y) this_fiber::Yield();
      });
      child.Join();
      joined.fetch_add(1, std::memory_order_relaxed);
    }));
  }
  TerminateRuntime();
  EXPECT_EQ(kJoiners, joined.load());
}

// Fibers may inspect the runtime while TerminateRuntime waits for them.
TEST(Runtime, FibersCanReadStatsWhileTheRuntimeTerminates) {
  StartRuntime(OptionsWithWorkers(2));
  std::atomic<int> reads{0};
  std::atomic<bool> started{false};
  ASSERT_TRUE(StartFiberDetached([&] {
    started = true;
    for (int i = 0; i != 2000; ++i) {
      if (GetSchedulingGroupCount() == 1 &&
          GetRuntimeStats().scheduling_groups.size() == 1) {
        reads.fetch_add(1, std::memory_order_relaxed);
      }
      this_fiber::Yield();
    }
  }));
  ASSERT_TRUE(PollUntil([&] { return started.load(); }, "the fiber to start"));
  TerminateRuntime();
  EXPECT_EQ(reads.load(), 2000);
}

TEST(Runtime, IsRunningInFiberWorkerOnlyOnWorkers) {
  EXPECT_FALSE(IsRunningInFiberWorker());
  Runtime runtime(OptionsWithWorkers(2));
  EXPECT_FALSE(IsRunningInFiberWorker());
  bool in_worker = false;
  Fiber fiber([&in_worker] { in_worker = IsRunningInFiberWorker(); });
  fiber.Join();
  EXPECT_TRUE(in_worker);
  bool in_plain_thread = true;
  std::thread([&in_plain_thread] { in_plain_thread = IsRunningInFiberWorker(); }).join();
  EXPECT_FALSE(in_plain_thread);
}

TEST(RuntimeStats, WorkersAcrossGroupsAddUpToTheConcurrencyHint) {
  for (std::size_t workers : {1, 3, 16}) {
    Runtime runtime(OptionsWithWorkers(workers));
    const TotalStats total = SumStats(GetRuntimeStats());
    EXPECT_EQ(workers, total.workers) << workers << " workers";
    EXPECT_EQ(GetSchedulingGroupCount(), total.groups) << workers << " workers";
    EXPECT_GE(total.groups, 1u);
  }
}

TEST(RuntimeStats, ExplicitGroupSizeSplitsTheWorkers) {
  RuntimeOptions options = OptionsWithWorkers(4);
  options.scheduling_group_size = 2;
  Runtime runtime(options);
  EXPECT_EQ(2u, GetSchedulingGroupCount());
  const RuntimeStats stats = GetRuntimeStats();
  ASSERT_EQ(2u, stats.scheduling_groups.size());
  for (const SchedulingGroupStats& group : stats.scheduling_groups) {
    EXPECT_EQ(2u, group.workers.size());
  }
}

TEST(RuntimeStats, CreatedAndFinishedFibersAddUp) {
  Runtime runtime(OptionsWithWorkers(4));
  const std::uint64_t started = Scaled(1000, 50);
  std::vector<Fiber> fibers;
  for (std::uint64_t i = 0; i != started; ++i) {
    fibers.emplace_back([] { this_fiber::Yield(); });
  }
  for (Fiber& fiber : fibers) fiber.Join();

  // A fiber counts as finished once it has ended, which may be just after Join()
  // returned; wait for the counters to settle.
  TotalStats total;
  ASSERT_TRUE(PollUntil(
      [&] {
        total = SumStats(GetRuntimeStats());
        return total.created == total.finished && total.alive == 0;
      },
      "fibers_finished to catch up with fibers_created"))
      << "created " << total.created << ", finished " << total.finished << ", alive "
      << total.alive;
  EXPECT_GE(total.created, started);
  for (const SchedulingGroupStats& group : GetRuntimeStats().scheduling_groups) {
    EXPECT_EQ(group.fibers_created - group.fibers_finished, group.fibers_alive);
  }
}

TEST(RuntimeStats, FullRunQueueOverflowsWithoutLosingFibers) {
  RuntimeOptions options = OptionsWithWorkers(1);
  options.run_queue_size = 4;
  Runtime runtime(options);
  const std::size_t fibers = Scaled(10000, 100);
  std::vector<std::atomic<int>> runs(fibers);
  std::atomic<std::size_t> finished{0};
  // While a fiber keeps the only worker busy, none of the fibers this thread
  // starts can run, so the 4-slot queue must overflow. (Fibers started by a
  // fiber would go to its worker's local run stack instead.)
  std::atomic<bool> busy{false};
  std::atomic<bool> all_started{false};
  ASSERT_TRUE(StartFiberDetached([&] {
    busy = true;
    while (!all_started.load()) {
      // Holds the worker without blocking or yielding.
    }
  }));
  testing::WaitOrAbort(
      PollUntil([&] { return busy.load(); }, "the fiber holding the worker"));
  std::size_t started = 0;
  while (started != fibers && StartFiberDetached([&runs, &finished, i = started] {
           runs[i].fetch_add(1, std::memory_order_relaxed);
           finished.fetch_add(1, std::memory_order_release);
         })) {
    ++started;
  }
  all_started = true;
  ASSERT_EQ(started, fibers) << "StartFiberDetached failed";
  ASSERT_TRUE(PollUntil([&] { return finished.load() >= fibers; },
                        "every fiber pushed to a full run queue to run"))
      << finished.load() << " of " << fibers << " ran";
  EXPECT_GT(SumStats(GetRuntimeStats()).overflows, 0u);
  TerminateRuntime();  // all fibers have ended: nothing can run twice later
  for (std::size_t i = 0; i != fibers; ++i) {
    ASSERT_EQ(1, runs[i].load()) << "fiber " << i;
  }
}

// Plain threads keep starting fibers into a 4-slot run queue while two
// workers drain its overflow list, and the fibers end at once, so their stacks
// (which hold their control blocks) are reused while the drain goes on: the
// drain must not read a fiber it has just handed to the ring. Every fiber runs
// exactly once.
TEST(RuntimeStats, OverflowDrainedWhileFibersEndAndStartLosesNone) {
  RuntimeOptions options = OptionsWithWorkers(2);
  options.run_queue_size = 4;
  Runtime runtime(options);
  constexpr std::size_t kThreads = 4;
  const std::size_t per_thread = Scaled(20000, 2000);
  std::vector<std::atomic<int>> runs(kThreads * per_thread);
  std::atomic<std::size_t> finished{0};
  std::atomic<bool> failed_to_start{false};
  {
    std::vector<std::thread> starters;
    for (std::size_t t = 0; t != kThreads; ++t) {
      starters.emplace_back([&, t] {
        for (std::size_t i = t * per_thread; i != (t + 1) * per_thread; ++i) {
          if (!StartFiberDetached([&runs, &finished, i] {
                runs[i].fetch_add(1, std::memory_order_relaxed);
                finished.fetch_add(1, std::memory_order_release);
              })) {
            failed_to_start = true;
            return;
          }
        }
      });
    }
    for (std::thread& starter : starters) starter.join();
  }
  ASSERT_FALSE(failed_to_start.load()) << "StartFiberDetached failed";
  // A lost fiber would hang the runtime's termination: abort instead.
  ::testing::AssertionResult all_ran =
      PollUntil([&] { return finished.load() >= runs.size(); },
                "every fiber started into a full run queue to run");
  if (!all_ran) all_ran << "; " << finished.load() << " of " << runs.size() << " ran";
  testing::WaitOrAbort(all_ran);
  TerminateRuntime();  // all fibers have ended: nothing can run twice later
  for (std::size_t i = 0; i != runs.size(); ++i) {
    ASSERT_EQ(1, runs[i].load()) << "fiber " << i;
  }
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

TEST(DumpRuntimeStats, DescribesEveryGroupAndWorker) {
  {
    std::ostringstream stopped;
    DumpRuntimeStats(stopped);
    EXPECT_EQ(stopped.str(), "weft stats: not running\n");
  }
  RuntimeOptions options = testing::OptionsWithWorkers(4);
  options.scheduling_group_size = 2;
  Runtime runtime(options);
  for (int i = 0; i != 10; ++i) Fiber([] {}).Join();
  std::ostringstream out;
  DumpRuntimeStats(out);
  const std::string text = out.str();
  const std::string policy = testing::RunningSchedulingPolicy();
  EXPECT_FALSE(policy.empty());
  EXPECT_NE(text.find("weft stats: 2 scheduling groups (" + policy + " policy), 4 workers"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("group 1 (NUMA node"), std::string::npos) << text;
  EXPECT_NE(text.find("  worker 1: created"), std::string::npos) << text;
  EXPECT_NE(text.find("\nblocking pool: threads 0 (max 64"), std::string::npos) << text;
  EXPECT_NE(text.find("\nfile I/O: engine "), std::string::npos) << text;
  EXPECT_NE(text.find("\nsockets: engine "), std::string::npos) << text;
  // A hibernation line only while fibers may hibernate (WEFT_HIBERNATE_AFTER_MS
  // in CI's hibernation phase).
  const bool hibernating = GetRuntimeStats().hibernation.enabled;
  EXPECT_EQ(text.find("\nhibernation: fibers ") != std::string::npos, hibernating) << text;
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n';
  // totals, groups, workers, pool, file I/O, sockets, hibernation
  EXPECT_EQ(lines, 1u + 2u + 4u + 1u + 1u + 1u + (hibernating ? 1u : 0u)) << text;
}

TEST(DumpRuntimeStats, IsLoggedPeriodicallyWhenAskedTo) {
  ::testing::internal::CaptureStderr();
  RuntimeOptions options = testing::OptionsWithWorkers(2);
  options.stats_log_interval_ms = 2;
  StartRuntime(options);
  const bool fired = testing::PollUntil(
      [] {
        std::uint64_t fired = 0;
        for (const auto& group : GetRuntimeStats().scheduling_groups) {
          fired += group.timers_fired;
        }
        return fired >= 4;
      },
      "the stats timer to fire four times");
  TerminateRuntime();  // waits for the dumps that started
  const std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(fired);
  std::size_t dumps = 0;
  for (std::size_t at = logged.find("weft stats: "); at != std::string::npos;
       at = logged.find("weft stats: ", at + 1)) {
    ++dumps;
  }
  EXPECT_GE(dumps, 3u) << logged;
}

TEST(DumpRuntimeStats, AnIntervalOutOfRangeIsRejected) {
  RuntimeOptions options;
  options.stats_log_interval_ms = 86'400'001;
  try {
    options.Validate();
    FAIL() << "accepted a stats interval over a day";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("weft_stats_log_interval_ms"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace weft
