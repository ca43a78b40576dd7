#include "runtime/detail/context.h"

#include <gtest/gtest.h>

#include <vector>

#include "runtime/detail/stack_pool.h"

namespace weft::detail {
namespace {

MachineContext main_context;
MachineContext ping_context;
MachineContext pong_context;
std::vector<int> trace;

void PingEntry(SwitchArrival arrival) {
  EXPECT_EQ(arrival.from, &main_context);
  long n = reinterpret_cast<long>(arrival.data);
  for (;;) {
    trace.push_back(static_cast<int>(n));
    arrival = SwitchContext(&ping_context, &main_context, reinterpret_cast<void*>(n + 1));
    EXPECT_EQ(arrival.from, &main_context);
    n = reinterpret_cast<long>(arrival.data);
  }
}

void PongEntry(SwitchArrival arrival) {
  // Started by ping's context: passes control on to main, never back to ping.
  EXPECT_EQ(arrival.from, &ping_context);
  trace.push_back(-1);
  SwitchContext(&pong_context, &main_context, nullptr, /*from_exits=*/true);
  ADD_FAILURE() << "an exited context was resumed";
}

void ChainEntry(SwitchArrival) {
  trace.push_back(-2);
  SwitchContext(&ping_context, &pong_context, nullptr, /*from_exits=*/true);
}

class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConfigureStackPool(64 * 1024, true);
    int error = 0;
    ASSERT_TRUE(AllocateStack(0, &ping_stack_, &error));
    ASSERT_TRUE(AllocateStack(0, &pong_stack_, &error));
    AdoptThreadContext(&main_context);
    trace.clear();
  }
  void TearDown() override {
    DestroyContext(&ping_context);
    DestroyContext(&pong_context);
    FreeStack(ping_stack_);
    FreeStack(pong_stack_);
    ReleasePooledStacks();
  }
  Stack ping_stack_, pong_stack_;
};

TEST_F(ContextTest, SwitchesBackAndForthPassingData) {
  MakeContext(&ping_context, ping_stack_.low, StackTop(ping_stack_),
              &PingEntry);
  long value = 0;
  for (int i = 0; i < 100000; ++i) {
    SwitchArrival arrival =
        SwitchContext(&main_context, &ping_context, reinterpret_cast<void*>(value));
    ASSERT_EQ(arrival.from, &ping_context);
    ASSERT_EQ(reinterpret_cast<long>(arrival.data), value + 1);
    value += 2;
  }
  ASSERT_EQ(trace.size(), 100000u);
  for (int i = 0; i < 100000; ++i) ASSERT_EQ(trace[i], 2 * i);
}

TEST_F(ContextTest, AContextCanHandOffToAnotherAndExit) {
  MakeContext(&ping_context, ping_stack_.low, StackTop(ping_stack_),
              &ChainEntry);
  MakeContext(&pong_context, pong_stack_.low, StackTop(pong_stack_),
              &PongEntry);
  SwitchArrival arrival = SwitchContext(&main_context, &ping_context, nullptr);
  EXPECT_EQ(arrival.from, &pong_context);
  EXPECT_EQ(trace, (std::vector<int>{-2, -1}));
}

}  // namespace
}  // namespace weft::detail
