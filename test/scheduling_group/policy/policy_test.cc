// Choosing a scheduling policy: RuntimeOptions::scheduling_policy, the
// WEFT_SCHEDULING_POLICY override, and what sets the policies apart.
#include "runtime/scheduling_group/policy/scheduling_policy.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::OptionsWithWorkers;
using testing::RunningSchedulingPolicy;

// WEFT_SCHEDULING_POLICY as the suite was started with; empty if unset.
std::string PolicyFromEnvironment() {
  const char* value = std::getenv("WEFT_SCHEDULING_POLICY");
  return value == nullptr ? "" : value;
}

TEST(SchedulingPolicy, TheOptionChoosesThePolicyUnlessTheEnvironmentDoes) {
  for (const char* name : detail::kSchedulingPolicies) {
    RuntimeOptions options = OptionsWithWorkers(2);
    options.scheduling_policy = name;
    Runtime runtime(options);
    const std::string expected =
        PolicyFromEnvironment().empty() ? name : PolicyFromEnvironment();
    EXPECT_EQ(expected, RunningSchedulingPolicy());
    std::vector<Fiber> fibers;
    std::vector<int> ran(100, 0);
    for (int i = 0; i < 100; ++i) fibers.emplace_back([&ran, i] { ++ran[i]; });
    for (Fiber& fiber : fibers) fiber.Join();
    EXPECT_EQ(std::vector<int>(100, 1), ran) << "policy " << name;
  }
}

TEST(SchedulingPolicy, AnUnknownNameInTheEnvironmentIsRefusedWithTheAcceptedOnes) {
  const std::string saved = PolicyFromEnvironment();
  ASSERT_EQ(0, setenv("WEFT_SCHEDULING_POLICY", "v7", 1));
  try {
    StartRuntime(OptionsWithWorkers(1));
    ADD_FAILURE() << "StartRuntime accepted WEFT_SCHEDULING_POLICY=v7";
    TerminateRuntime();
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("WEFT_SCHEDULING_POLICY"), std::string::npos) << what;
    EXPECT_NE(what.find(detail::SchedulingPolicyList()), std::string::npos) << what;
  }
  if (saved.empty()) {
    unsetenv("WEFT_SCHEDULING_POLICY");
  } else {
    setenv("WEFT_SCHEDULING_POLICY", saved.c_str(), 1);
  }
}

// A fiber starts five children, then joins them: the order they ran in.
std::vector<int> OrderOfFiveChildren() {
  std::vector<int> order;
  Fiber parent([&] {
    std::vector<Fiber> children;
    for (int i = 0; i < 5; ++i) children.emplace_back([&order, i] { order.push_back(i); });
    for (Fiber& child : children) child.Join();
  });
  parent.Join();
  return order;
}

// v1 keeps no local run stacks: what a fiber starts runs in the order started
// (weft's runs newest first, local_run_stack_test.cc).
TEST(SchedulingPolicy, V1RunsWhatAFiberStartsInTheOrderItWasStarted) {
  RuntimeOptions options = OptionsWithWorkers(1);
  options.scheduling_policy = "v1";
  Runtime runtime(options);
  if (RunningSchedulingPolicy() != "v1") {
    GTEST_SKIP() << "WEFT_SCHEDULING_POLICY chose " << RunningSchedulingPolicy();
  }
  EXPECT_EQ(OrderOfFiveChildren(), (std::vector<int>{0, 1, 2, 3, 4}));
}

// v2's per-worker deque: its owner takes the newest fiber first.
TEST(SchedulingPolicy, V2RunsWhatAFiberStartsNewestFirstOnOneWorker) {
  RuntimeOptions options = OptionsWithWorkers(1);
  options.scheduling_policy = "v2";
  Runtime runtime(options);
  if (RunningSchedulingPolicy() != "v2") {
    GTEST_SKIP() << "WEFT_SCHEDULING_POLICY chose " << RunningSchedulingPolicy();
  }
  EXPECT_EQ(OrderOfFiveChildren(), (std::vector<int>{4, 3, 2, 1, 0}));
}

// A fiber started by one that keeps its worker busy (it never blocks until the
// child ran) is taken by another worker: from v2's deque by a thief, from
// weft's local run stack, or from v1's shared queue.
TEST(SchedulingPolicy, AFiberStartedByABusyFiberRunsOnAnotherWorker) {
  Runtime runtime(OptionsWithWorkers(2));
  std::atomic<bool> child_ran{false};
  Fiber parent([&] {
    Fiber child([&] { child_ran = true; });
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!child_ran.load() && std::chrono::steady_clock::now() < give_up) {
    }
    EXPECT_TRUE(child_ran.load()) << "policy " << RunningSchedulingPolicy()
                                  << ": no idle worker took the child in 30 s";
    child.Join();
  });
  parent.Join();
}

}  // namespace
}  // namespace weft
