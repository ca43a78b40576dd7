#include "runtime/machine/topology.h"

#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace weft::detail {
namespace {

struct LayoutCase {
  const char* name;
  const char* topology;
  std::string accessible_cpus;
  std::size_t concurrency_hint;
  std::size_t scheduling_group_size;
  bool numa_aware;
  // Expected groups as (NUMA node, workers), in order.
  std::vector<std::pair<std::size_t, std::size_t>> groups;
};

// Names the case in test output instead of dumping its bytes.
void PrintTo(const LayoutCase& c, std::ostream* os) { *os << c.name; }

class PlanGroupsTest : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(PlanGroupsTest, SplitsWorkersAsDocumented) {
  const LayoutCase& c = GetParam();
  RuntimeOptions options;
  options.topology = c.topology;
  options.accessible_cpus = c.accessible_cpus;
  options.concurrency_hint = c.concurrency_hint;
  options.scheduling_group_size = c.scheduling_group_size;
  options.numa_aware = c.numa_aware;
  const CpuLayout layout = DiscoverCpus(options);
  ASSERT_EQ(layout.cpus.size(), layout.numa_nodes.size());
  EXPECT_TRUE(layout.synthetic);

  const std::vector<GroupPlan> plans = PlanGroups(options, layout);
  std::vector<std::pair<std::size_t, std::size_t>> got;
  for (const GroupPlan& plan : plans) {
    got.emplace_back(plan.numa_node, plan.worker_cpus.size());
    for (const auto& cpus : plan.worker_cpus) {
      EXPECT_TRUE(cpus.empty()) << "CPUs of a synthetic topology must not be pinned";
    }
  }
  EXPECT_EQ(got, c.groups);
}

INSTANTIATE_TEST_SUITE_P(
    SyntheticTopologies, PlanGroupsTest,
    ::testing::Values(LayoutCase{"OneNodeTwoCpusIsOneGroup",
                                 "pack:1 numa:1 core:2 pu:1",
                                 "",
                                 0,
                                 0,
                                 true,
                                 {{0, 2}}},
                      LayoutCase{"ThirtyTwoCpusMakeThreeGroupsUsingEveryWorker",
                                 "pack:1 numa:1 core:32 pu:1",
                                 "",
                                 0,
                                 0,
                                 true,
                                 {{0, 11}, {0, 11}, {0, 10}}},
                      LayoutCase{"TwoNodesOfSixteenMakeTwoGroupsPerNode",
                                 "pack:2 numa:1 core:16 pu:1",
                                 "",
                                 0,
                                 0,
                                 true,
                                 {{0, 8}, {0, 8}, {1, 8}, {1, 8}}},
                      LayoutCase{"FourNodesOfTwelveMakeOneGroupPerNode",
                                 "pack:4 numa:1 core:12 pu:1",
                                 "",
                                 0,
                                 0,
                                 true,
                                 {{0, 12}, {1, 12}, {2, 12}, {3, 12}}},
                      LayoutCase{"UnevenNodesGetWorkersInProportion",
                                 "pack:2 numa:1 core:16 pu:1",
                                 "0-19",
                                 0,
                                 0,
                                 true,
                                 {{0, 8}, {0, 8}, {1, 4}}},
                      LayoutCase{"AccessibleSubsetLimitsTheWorkers",
                                 "pack:1 numa:1 core:32 pu:1",
                                 "0-3",
                                 0,
                                 0,
                                 true,
                                 {{0, 4}}},
                      LayoutCase{"WithoutNumaAwarenessGroupsMaySpanNodes",
                                 "pack:2 numa:1 core:16 pu:1",
                                 "",
                                 0,
                                 0,
                                 false,
                                 {{0, 11}, {0, 11}, {0, 10}}},
                      LayoutCase{"FewerWorkersThanNodesLeaveNodesEmpty",
                                 "pack:4 numa:1 core:12 pu:1",
                                 "",
                                 3,
                                 0,
                                 true,
                                 {{0, 1}, {1, 1}, {2, 1}}},
                      LayoutCase{"ExplicitGroupSizeSplitsEvenly",
                                 "pack:1 numa:1 core:32 pu:1",
                                 "",
                                 12,
                                 5,
                                 true,
                                 {{0, 4}, {0, 4}, {0, 4}}},
                      LayoutCase{"MoreWorkersThanCpusAreAllowed",
                                 "pack:1 numa:1 core:2 pu:1",
                                 "",
                                 16,
                                 0,
                                 true,
                                 {{0, 8}, {0, 8}}}),
    [](const ::testing::TestParamInfo<LayoutCase>& info) { return info.param.name; });

TEST(PlanGroups, NoGroupSpansTwoNodesWhenNumaAware) {
  RuntimeOptions options;
  options.topology = "pack:3 numa:1 core:7 pu:2";
  const CpuLayout layout = DiscoverCpus(options);
  std::size_t workers = 0;
  std::set<std::size_t> nodes;
  for (const GroupPlan& plan : PlanGroups(options, layout)) {
    workers += plan.worker_cpus.size();
    nodes.insert(plan.numa_node);
    EXPECT_LE(plan.worker_cpus.size(), 15u);
  }
  EXPECT_EQ(workers, 42u) << "every CPU gets a worker";
  EXPECT_EQ(nodes, (std::set<std::size_t>{0, 1, 2}));
}

TEST(PlanGroups, PinsEachWorkerToItsOwnCpuWithoutMigration) {
  RuntimeOptions options;  // the real machine
  options.disallow_cpu_migration = true;
  const CpuLayout layout = DiscoverCpus(options);
  EXPECT_FALSE(layout.synthetic);
  std::set<int> used;
  for (const GroupPlan& plan : PlanGroups(options, layout)) {
    for (const auto& cpus : plan.worker_cpus) {
      ASSERT_EQ(cpus.size(), 1u);
      EXPECT_TRUE(used.insert(cpus[0]).second) << "CPU " << cpus[0] << " pinned twice";
    }
  }
  EXPECT_EQ(used.size(), layout.cpus.size());
}

TEST(PlanGroups, RejectsMorePinnedWorkersThanCpus) {
  RuntimeOptions options;
  options.topology = "pack:1 numa:1 core:2 pu:1";
  options.disallow_cpu_migration = true;
  options.concurrency_hint = 3;
  try {
    PlanGroups(options, DiscoverCpus(options));
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("disallow_cpu_migration"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(options.Validate(), std::invalid_argument);
}

TEST(DiscoverCpus, ReportsTheNumaNodeOfEveryCpu) {
  RuntimeOptions options;
  options.topology = "pack:2 numa:2 core:2 pu:1";
  const CpuLayout layout = DiscoverCpus(options);
  EXPECT_EQ(layout.cpus, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(layout.numa_nodes, (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3}));
}

}  // namespace
}  // namespace weft::detail
