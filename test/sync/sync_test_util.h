// Runs test bodies as fibers or as plain threads, so that every primitive is
// tested with each kind of waiter and each kind of notifier.
#ifndef WEFT_TEST_SYNC_SYNC_TEST_UTIL_H_
#define WEFT_TEST_SYNC_SYNC_TEST_UTIL_H_

#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft::testing {

enum class Side { kFiber, kThread };

inline const char* SideName(Side side) {
  return side == Side::kFiber ? "Fiber" : "Thread";
}

// A fiber or a plain thread running `body`; joined by Join() or destruction.
class Actor {
 public:
  // Takes over a fiber or a thread that the caller started (with attributes
  // or a CPU of its choice).
  explicit Actor(Fiber fiber) : fiber_(std::move(fiber)) {}
  explicit Actor(std::thread thread) : thread_(std::move(thread)) {}
  Actor(Side side, std::function<void()> body) {
    if (side == Side::kFiber) {
      fiber_ = Fiber(std::move(body));
    } else {
      thread_ = std::thread(std::move(body));
    }
  }
  Actor(Actor&&) = default;
  ~Actor() { Join(); }
  void Join() {
    if (fiber_.Joinable()) fiber_.Join();
    if (thread_.joinable()) thread_.join();
  }

 private:
  Fiber fiber_;
  std::thread thread_;
};

// Parameterized over (waiter side, notifier side) with a 4-worker runtime.
class WaiterNotifierTest : public ::testing::TestWithParam<std::tuple<Side, Side>> {
 protected:
  void SetUp() override { StartRuntime(OptionsWithWorkers(4)); }
  void TearDown() override { TerminateRuntime(); }
  Side waiter() const { return std::get<0>(GetParam()); }
  Side notifier() const { return std::get<1>(GetParam()); }
};

inline std::string WaiterNotifierName(
    const ::testing::TestParamInfo<std::tuple<Side, Side>>& info) {
  return std::string(SideName(std::get<0>(info.param))) + "Waits" +
         SideName(std::get<1>(info.param)) + "Notifies";
}

}  // namespace weft::testing

#define WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(suite)                   \
  INSTANTIATE_TEST_SUITE_P(                                                  \
      Sides, suite,                                                          \
      ::testing::Combine(::testing::Values(::weft::testing::Side::kFiber,    \
                                           ::weft::testing::Side::kThread),  \
                         ::testing::Values(::weft::testing::Side::kFiber,    \
                                           ::weft::testing::Side::kThread)), \
      ::weft::testing::WaiterNotifierName)

#endif  // WEFT_TEST_SYNC_SYNC_TEST_UTIL_H_
