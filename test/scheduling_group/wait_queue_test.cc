// The timed-wait core: WaitQueue::ParkUntil against concurrent Wake()s.
#include "runtime/scheduling_group/wait_queue.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/detail/spinlock.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft::detail {
namespace {

using std::chrono::steady_clock;
using weft::testing::Scaled;

struct Shared {
  Spinlock lock;
  WaitQueue queue;
};

// Runs `body` in a fiber (joined) or on the calling thread.
template <class F>
void RunAs(bool in_fiber, F body) {
  if (in_fiber) {
    Fiber(body).Join();
  } else {
    body();
  }
}

class ParkUntilTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { StartRuntime(weft::testing::OptionsWithWorkers(2)); }
  void TearDown() override { TerminateRuntime(); }
  bool waiter_is_fiber() const { return GetParam(); }
};

TEST_P(ParkUntilTest, TimesOutNoEarlierThanTheDeadlineWhenNobodyWakes) {
  RunAs(waiter_is_fiber(), [] {
    Shared shared;
    Waiter waiter;
    const auto start = steady_clock::now();
    const auto deadline = start + std::chrono::milliseconds(20);
    shared.lock.lock();
    EXPECT_FALSE(shared.queue.ParkUntil(&waiter, shared.lock, deadline));
    EXPECT_GE(steady_clock::now(), deadline);
    shared.lock.lock();
    EXPECT_TRUE(shared.queue.empty()) << "a timed-out waiter must be unlinked";
    shared.lock.unlock();
  });
}

TEST_P(ParkUntilTest, PastDeadlineReturnsAtOnceWithoutQueueing) {
  RunAs(waiter_is_fiber(), [] {
    Shared shared;
    Waiter waiter;
    shared.lock.lock();
    EXPECT_FALSE(shared.queue.ParkUntil(&waiter, shared.lock,
                                        steady_clock::now() - std::chrono::seconds(1)));
    shared.lock.lock();
    EXPECT_TRUE(shared.queue.empty());
    shared.lock.unlock();
  });
}

TEST_P(ParkUntilTest, WakeBeforeTheDeadlineWins) {
  Shared shared;
  std::atomic<bool> parked{false};
  std::atomic<int> result{-1};
  auto wait = [&] {
    Waiter waiter;
    shared.lock.lock();
    parked = true;
    result = shared.queue.ParkUntil(&waiter, shared.lock,
                                    steady_clock::now() + std::chrono::hours(1));
  };
  std::thread thread_waiter;
  if (waiter_is_fiber()) {
    ASSERT_TRUE(StartFiberDetached(wait));
  } else {
    thread_waiter = std::thread(wait);
  }
  Waiter* popped = nullptr;
  ASSERT_TRUE(weft::testing::PollUntil(
      [&] {
        std::lock_guard<Spinlock> guard(shared.lock);
        popped = shared.queue.PopFront();
        return popped != nullptr;
      },
      "the waiter to park"));
  WaitQueue::Wake(popped);
  ASSERT_TRUE(
      weft::testing::PollUntil([&] { return result.load() != -1; }, "the waiter"));
  EXPECT_EQ(result.load(), 1);
  if (thread_waiter.joinable()) thread_waiter.join();
}

// Many short timed waits against a waker that pops and wakes at random moments:
// every wait ends exactly once, by the waker or by its deadline, and a waiter
// that timed out is never popped afterwards (the waker's count of waiters it
// woke equals the number of waits that report a wake-up).
TEST_P(ParkUntilTest, TimeoutAndWakeRaceWithExactlyOneWinner) {
  const int waits = static_cast<int>(Scaled(10000, 1000));
  Shared shared;
  std::atomic<bool> done{false};
  std::atomic<long> woken_by_waker{0};
  std::atomic<long> reported_woken{0};
  std::thread waker([&] {
    std::mt19937 random(7);
    while (!done.load(std::memory_order_acquire)) {
      Waiter* w;
      {
        std::lock_guard<Spinlock> guard(shared.lock);
        w = shared.queue.PopFront();
      }
      if (w != nullptr) {
        ++woken_by_waker;
        WaitQueue::Wake(w);
      }
      for (int spin = random() % 2000; spin > 0; --spin) CpuRelax();
    }
  });
  RunAs(waiter_is_fiber(), [&] {
    std::mt19937 random(11);
    for (int i = 0; i != waits; ++i) {
      Waiter waiter;
      shared.lock.lock();
      const auto timeout = std::chrono::microseconds(random() % 50);
      if (shared.queue.ParkUntil(&waiter, shared.lock, steady_clock::now() + timeout)) {
        ++reported_woken;
      }
    }
  });
  done = true;
  waker.join();
  EXPECT_EQ(woken_by_waker.load(), reported_woken.load());
  EXPECT_TRUE(shared.queue.empty());
}

INSTANTIATE_TEST_SUITE_P(Waiters, ParkUntilTest, ::testing::Bool(), [](const auto& info) {
  return std::string(info.param ? "Fiber" : "PlainThread");
});

}  // namespace
}  // namespace weft::detail
