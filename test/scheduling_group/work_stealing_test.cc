// Work stealing between scheduling groups and the placement of new fibers, on
// synthetic topologies so that several groups and NUMA nodes exist on any
// machine (workers are not pinned then).
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::kGenerousTimeout;
using testing::PollUntil;
using testing::Scaled;
using testing::SumOverGroups;
using testing::WaitOrAbort;

// The scheduling group the calling fiber runs in right now.
std::size_t CurrentGroup() { return detail::CurrentWorker()->group()->index(); }

RuntimeOptions Layout(const std::string& topology, std::size_t workers,
                      std::size_t group_size) {
  RuntimeOptions options;
  options.topology = topology;
  options.concurrency_hint = workers;
  options.scheduling_group_size = group_size;
  return options;
}

struct StealTotals {
  std::uint64_t within = SumOverGroups(&SchedulingGroupStats::steals_within_numa_node);
  std::uint64_t across = SumOverGroups(&SchedulingGroupStats::steals_across_numa_nodes);
};

StealTotals Steals() { return StealTotals(); }

FiberAttributes InGroup(std::size_t group, bool local = false) {
  FiberAttributes attrs;
  attrs.scheduling_group = group;
  attrs.scheduling_group_local = local;
  return attrs;
}

bool NoFiberAlive() {
  for (const SchedulingGroupStats& group : GetRuntimeStats().scheduling_groups) {
    if (group.fibers_alive != 0) return false;
  }
  return true;
}

// True when every worker outside group 0 is asleep on its futex.
bool OtherGroupsSleep() {
  const RuntimeStats stats = GetRuntimeStats();
  for (std::size_t g = 1; g < stats.scheduling_groups.size(); ++g) {
    for (const WorkerStats& worker : stats.scheduling_groups[g].workers) {
      if (worker.sleeps <= worker.wakeups) return false;
    }
  }
  return true;
}

// Occupies every worker of group 0 with a group-local fiber that neither yields
// nor blocks until the victims have run; once the other groups' workers have
// all gone to sleep, queues `victims` fibers in group 0. Those can only run by
// being stolen, and only if something wakes a sleeping group to steal them.
// Waits until every fiber has run; gave_up() says an occupier stopped waiting.
class BusyGroupZero {
 public:
  explicit BusyGroupZero(std::size_t victims) : victims_(victims) {}

  // `between` runs before the victims are queued, to queue more fibers right
  // behind the occupiers.
  void Start(const std::function<void()>& between = [] {}) {
    occupiers_ = GetRuntimeStats().scheduling_groups.at(0).workers.size();
    for (std::size_t i = 0; i != occupiers_; ++i) {
      ASSERT_TRUE(StartFiberDetached(InGroup(0, /*local=*/true), [this] {
        ++occupiers_running_;
        const auto deadline = std::chrono::steady_clock::now() + kGenerousTimeout;
        while (done_.load() < victims_) {
          if (std::chrono::steady_clock::now() > deadline) {
            gave_up_ = true;
            break;
          }
          // Lets the other workers' threads have this machine's few CPUs.
          std::this_thread::yield();
        }
        ++occupiers_done_;
      }));
    }
    WaitOrAbort(PollUntil([this] { return occupiers_running_.load() == occupiers_; },
                          "group 0's workers to be occupied"));
    // Observed, not relied on: makes the scenario the one where a runtime that
    // only lets awake workers steal leaves the backlog to the busy group.
    EXPECT_TRUE(PollUntil(OtherGroupsSleep, "the idle groups' workers to sleep"));
    between();
    for (std::size_t i = 0; i != victims_; ++i) {
      ASSERT_TRUE(StartFiberDetached(InGroup(0), [this] {
        if (CurrentGroup() != 0) ++ran_elsewhere_;
        ++done_;
      }));
    }
    WaitOrAbort(PollUntil(
        [this] {
          return done_.load() == victims_ && occupiers_done_.load() == occupiers_;
        },
        "every fiber of the busy group to run"));
  }

  bool gave_up() const { return gave_up_.load(); }
  std::size_t ran_elsewhere() const { return ran_elsewhere_.load(); }

 private:
  const std::size_t victims_;
  std::size_t occupiers_ = 0;
  std::atomic<std::size_t> done_{0};
  std::atomic<std::size_t> occupiers_running_{0};
  std::atomic<std::size_t> occupiers_done_{0};
  std::atomic<std::size_t> ran_elsewhere_{0};
  std::atomic<bool> gave_up_{false};
};

struct SameNodeCase {
  const char* name;
  std::size_t workers;
  std::size_t group_size;
  std::size_t ratio;
};

void PrintTo(const SameNodeCase& c, std::ostream* os) { *os << c.name; }

class SameNodeStealingTest : public ::testing::TestWithParam<SameNodeCase> {};

// The peer runtime weft descends from never steals within a node: its idle
// groups sleep until their own queue gets work. Here the busy group's queue can
// only drain by stealing, so this would time out there.
TEST_P(SameNodeStealingTest, IdleGroupsStealFromABusyGroupOnTheirNode) {
  RuntimeOptions options =
      Layout("pack:1 numa:1 core:16 pu:1", GetParam().workers, GetParam().group_size);
  options.work_stealing_ratio = GetParam().ratio;
  Runtime runtime(options);
  ASSERT_GE(GetSchedulingGroupCount(), 2u);

  const std::size_t victims = Scaled(2000, 200);
  BusyGroupZero busy(victims);
  busy.Start();
  EXPECT_FALSE(busy.gave_up())
      << "fibers queued behind a busy group were not stolen by the idle groups";
  EXPECT_EQ(busy.ran_elsewhere(), victims);
  const StealTotals steals = Steals();
  EXPECT_EQ(steals.within, victims) << "each victim is stolen once";
  EXPECT_EQ(steals.across, 0u) << "the topology has a single NUMA node";
  const RuntimeStats stats = GetRuntimeStats();
  EXPECT_EQ(stats.scheduling_groups[0].fibers_stolen_away, victims);
  EXPECT_TRUE(PollUntil(NoFiberAlive, "every group to count its fibers as finished"))
      << "fibers_alive must follow fibers that move between groups";
}

INSTANTIATE_TEST_SUITE_P(Layouts, SameNodeStealingTest,
                         ::testing::Values(SameNodeCase{"TwoGroupsOfOne", 2, 1, 16},
                                           SameNodeCase{"ThreeGroupsOfTwo", 6, 2, 16},
                                           SameNodeCase{"EightGroupsOfOne", 8, 1, 16},
                                           SameNodeCase{"EveryLook", 4, 1, 1},
                                           SameNodeCase{"RarelyButBeforeSleeping", 4, 2,
                                                        1000}),
                         [](const auto& info) { return std::string(info.param.name); });

// Two NUMA nodes of one CPU each: one single-worker group per node.
constexpr const char* kTwoNodes = "pack:2 numa:1 core:1 pu:1";

TEST(CrossNodeStealing, IsOffByDefault) {
  RuntimeOptions options = Layout(kTwoNodes, 2, 1);
  ASSERT_EQ(options.cross_numa_work_stealing_ratio, 0u);
  Runtime runtime(options);
  ASSERT_EQ(GetSchedulingGroupCount(), 2u);
  // Group 1 sits idle the whole time, next to a backlog it must not touch.
  const std::size_t fibers = Scaled(2000, 200);
  std::atomic<std::size_t> done{0};
  std::atomic<std::size_t> left_group{0};
  for (std::size_t i = 0; i != fibers; ++i) {
    ASSERT_TRUE(StartFiberDetached(InGroup(0), [&] {
      for (int k = 0; k != 3; ++k) {
        if (CurrentGroup() != 0) ++left_group;
        this_fiber::Yield();
      }
      if (CurrentGroup() != 0) ++left_group;
      ++done;
    }));
  }
  WaitOrAbort(PollUntil([&] { return done.load() == fibers; }, "every fiber"));
  EXPECT_EQ(left_group.load(), 0u);
  const StealTotals steals = Steals();
  EXPECT_EQ(steals.across, 0u);
  EXPECT_EQ(steals.within, 0u) << "each node has a single group";
}

TEST(CrossNodeStealing, HappensWithRatioOne) {
  RuntimeOptions options = Layout(kTwoNodes, 2, 1);
  options.cross_numa_work_stealing_ratio = 1;
  Runtime runtime(options);
  ASSERT_EQ(GetSchedulingGroupCount(), 2u);
  const std::size_t victims = Scaled(2000, 200);
  BusyGroupZero busy(victims);
  busy.Start();
  EXPECT_FALSE(busy.gave_up()) << "the group on the other node did not steal";
  EXPECT_EQ(busy.ran_elsewhere(), victims);
  const StealTotals steals = Steals();
  EXPECT_EQ(steals.across, victims);
  EXPECT_EQ(steals.within, 0u);
}

TEST(GroupLocalFibers, AreNeverStolenAndDoNotHideTheFibersBehindThem) {
  RuntimeOptions options = Layout("pack:1 numa:1 core:4 pu:1", 4, 1);
  options.work_stealing_ratio = 1;  // thieves look as often as they can
  Runtime runtime(options);
  ASSERT_EQ(GetSchedulingGroupCount(), 4u);

  const std::size_t locals = Scaled(200, 20);
  constexpr int kResumes = 20;
  std::atomic<std::size_t> locals_done{0};
  std::atomic<std::size_t> escapes{0};
  auto local_body = [&] {
    for (int k = 0; k != kResumes; ++k) {
      if (CurrentGroup() != 0) ++escapes;
      this_fiber::Yield();
    }
    if (CurrentGroup() != 0) ++escapes;
    ++locals_done;
  };
  // Local fibers at the head of group 0's queue, stealable ones behind them,
  // while group 0's worker is occupied: the stealable ones must still be taken.
  const std::size_t victims = Scaled(1000, 100);
  BusyGroupZero busy(victims);
  busy.Start([&] {
    for (std::size_t i = 0; i != locals; ++i) {
      ASSERT_TRUE(StartFiberDetached(InGroup(0, /*local=*/true), local_body));
    }
  });
  EXPECT_FALSE(busy.gave_up())
      << "group-local fibers at the head of the queue kept the others from being stolen";
  WaitOrAbort(
      PollUntil([&] { return locals_done.load() == locals; }, "the local fibers"));
  EXPECT_EQ(escapes.load(), 0u) << "a group-local fiber was resumed in another group";
  EXPECT_EQ(busy.ran_elsewhere(), victims);
  EXPECT_EQ(Steals().within, victims)
      << "only the stealable fibers are stolen, once each";
}

struct StressCase {
  const char* name;
  std::size_t within_ratio;
  std::size_t across_ratio;
};

void PrintTo(const StressCase& c, std::ostream* os) { *os << c.name; }

class ManyGroupsStressTest : public ::testing::TestWithParam<StressCase> {};

// Eight groups of two workers over four NUMA nodes on this small machine:
// fibers spawn and join children in every group, yield, and run local fibers
// while thieves take whatever they may. Every task runs exactly once, the local
// ones never leave their group, and the counters add up.
TEST_P(ManyGroupsStressTest, EveryFiberRunsOnceAndLocalFibersStayHome) {
  RuntimeOptions options = Layout("pack:4 numa:1 core:4 pu:1", 16, 2);
  options.work_stealing_ratio = GetParam().within_ratio;
  options.cross_numa_work_stealing_ratio = GetParam().across_ratio;
  StartRuntime(options);
  const std::size_t groups = GetSchedulingGroupCount();
  ASSERT_EQ(groups, 8u);

  const std::size_t roots = Scaled(400, 40);
  constexpr std::size_t kChildren = 8;
  std::vector<std::atomic<int>> runs(roots * kChildren);
  std::atomic<std::size_t> escapes{0};
  std::atomic<std::size_t> roots_done{0};
  for (std::size_t r = 0; r != roots; ++r) {
    FiberAttributes attrs;
    attrs.scheduling_group = kUnspecifiedSchedulingGroup;
    ASSERT_TRUE(StartFiberDetached(attrs, [&, r] {
      std::vector<Fiber> children;
      for (std::size_t c = 0; c != kChildren; ++c) {
        const std::size_t home = (r + c) % groups;
        const bool local = c % 2 == 0;
        children.emplace_back(InGroup(home, local), [&, r, c, home, local] {
          for (int k = 0; k != 3; ++k) {
            if (local && CurrentGroup() != home) ++escapes;
            this_fiber::Yield();
          }
          if (local && CurrentGroup() != home) ++escapes;
          ++runs[r * kChildren + c];
        });
      }
      for (Fiber& child : children) child.Join();
      ++roots_done;
    }));
  }
  WaitOrAbort(PollUntil([&] { return roots_done.load() == roots; }, "every root fiber"));
  const RuntimeStats stats = GetRuntimeStats();
  TerminateRuntime();
  for (std::size_t i = 0; i != runs.size(); ++i) {
    ASSERT_EQ(runs[i].load(), 1) << "task " << i;
  }
  EXPECT_EQ(escapes.load(), 0u);
  std::uint64_t created = 0;
  std::uint64_t within = 0;
  std::uint64_t across = 0;
  for (const SchedulingGroupStats& group : stats.scheduling_groups) {
    created += group.fibers_created;
    within += group.steals_within_numa_node;
    across += group.steals_across_numa_nodes;
  }
  EXPECT_EQ(created, roots * (kChildren + 1));
  if (GetParam().within_ratio == 0) {
    EXPECT_EQ(within, 0u);
  }
  if (GetParam().across_ratio == 0) {
    EXPECT_EQ(across, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Ratios, ManyGroupsStressTest,
                         ::testing::Values(StressCase{"Defaults", 16, 0},
                                           StressCase{"Eager", 1, 1},
                                           StressCase{"Off", 0, 0}),
                         [](const auto& info) { return std::string(info.param.name); });

// Pins the calling thread to one CPU for the scope, restoring its mask after.
class PinnedToCpu {
 public:
  explicit PinnedToCpu(int cpu) {
    sched_getaffinity(0, sizeof(saved_), &saved_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
  }
  ~PinnedToCpu() { sched_setaffinity(0, sizeof(saved_), &saved_); }
  bool pinned() const { return pinned_; }

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
};

int FirstAllowedCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof(set), &set);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) return cpu;
  }
  return -1;
}

// Records, per group, how many of `count` fibers started with `attrs` by the
// calling thread began running there. Stealing must be off for this to show
// placement.
std::vector<std::size_t> PlaceFibers(const FiberAttributes& attrs, std::size_t count) {
  std::vector<std::atomic<std::size_t>> started(GetSchedulingGroupCount());
  std::atomic<std::size_t> done{0};
  for (std::size_t i = 0; i != count; ++i) {
    EXPECT_TRUE(StartFiberDetached(attrs, [&] {
      ++started[CurrentGroup()];
      ++done;
    }));
  }
  WaitOrAbort(PollUntil([&] { return done.load() == count; }, "the placed fibers"));
  std::vector<std::size_t> result;
  for (auto& n : started) result.push_back(n.load());
  return result;
}

// CPUs 0-7 are NUMA node 0, 8-15 node 1; two single-worker groups per node.
RuntimeOptions TwoGroupsPerNode() {
  RuntimeOptions options = Layout("pack:2 numa:1 core:8 pu:1", 4, 1);
  options.work_stealing_ratio = 0;
  return options;
}

TEST(Placement, NearestGroupFromAPlainThreadIsOneOfItsNodeRoundRobin) {
  const int cpu = FirstAllowedCpu();
  if (cpu < 0 || cpu >= 16) GTEST_SKIP() << "needs a CPU numbered below 16";
  PinnedToCpu pin(cpu);
  ASSERT_TRUE(pin.pinned());
  Runtime runtime(TwoGroupsPerNode());
  const RuntimeStats stats = GetRuntimeStats();
  ASSERT_EQ(stats.scheduling_groups.size(), 4u);
  const std::size_t node = static_cast<std::size_t>(cpu) / 8;

  constexpr std::size_t kFibers = 40;
  const std::vector<std::size_t> started = PlaceFibers(FiberAttributes{}, kFibers);
  for (std::size_t g = 0; g != started.size(); ++g) {
    if (stats.scheduling_groups[g].numa_node == node) {
      EXPECT_EQ(started[g], kFibers / 2) << "group " << g << " on the caller's node";
    } else {
      EXPECT_EQ(started[g], 0u) << "group " << g << " on another node";
    }
  }
}

TEST(Placement, UnspecifiedGroupIsAnyGroupRoundRobin) {
  Runtime runtime(TwoGroupsPerNode());
  FiberAttributes any;
  any.scheduling_group = kUnspecifiedSchedulingGroup;
  constexpr std::size_t kFibers = 40;
  for (std::size_t n : PlaceFibers(any, kFibers)) EXPECT_EQ(n, kFibers / 4);
}

TEST(Placement, NearestGroupFromAFiberIsItsOwnGroup) {
  Runtime runtime(TwoGroupsPerNode());
  constexpr std::size_t kFibers = 20;
  std::atomic<std::size_t> mismatches{0};
  std::atomic<std::size_t> done{0};
  for (std::size_t g = 0; g != 4; ++g) {
    ASSERT_TRUE(StartFiberDetached(InGroup(g), [&, g] {
      for (std::size_t i = 0; i != kFibers; ++i) {
        Fiber([&, g] { mismatches += CurrentGroup() != g; }).Join();
      }
      ++done;
    }));
  }
  WaitOrAbort(PollUntil([&] { return done.load() == 4; }, "the spawning fibers"));
  EXPECT_EQ(mismatches.load(), 0u);
}

TEST(DescribeLayout, NamesEveryGroupItsNodeAndTheStealingRatios) {
  EXPECT_EQ(DescribeLayout(), "") << "no runtime is running";
  RuntimeOptions options = Layout("pack:2 numa:1 core:8 pu:1", 6, 0);
  options.cross_numa_work_stealing_ratio = 4;
  const std::string planned = DescribeLayout(options);
  Runtime runtime(options);
  const std::string running = DescribeLayout();
  EXPECT_EQ(planned, running);
  EXPECT_NE(running.find("6 workers in 2 scheduling groups on 2 NUMA nodes"),
            std::string::npos)
      << running;
  EXPECT_NE(running.find("group 1: NUMA node 1, 3 workers, not pinned"),
            std::string::npos)
      << running;
  EXPECT_NE(running.find("within a NUMA node on every 16th look for work"),
            std::string::npos)
      << running;
  EXPECT_NE(running.find("across NUMA nodes on every 4th look"), std::string::npos)
      << running;
}

TEST(DescribeLayout, RejectsInvalidOptionsLikeStartRuntime) {
  RuntimeOptions options;
  options.run_queue_size = 1000;
  EXPECT_THROW(DescribeLayout(options), std::invalid_argument);
  EXPECT_EQ(GetSchedulingGroupCount(), 0u);
}

}  // namespace
}  // namespace weft
