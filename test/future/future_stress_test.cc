// A million futures fulfilled by plain threads while fibers wait for them, some
// directly (BlockingGet), some through a continuation: every value arrives once,
// at the waiter it was meant for.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "test/test_util.h"

namespace weft {
namespace {

class FutureStressTest : public testing::WorkerCountTest {};

TEST_P(FutureStressTest, AMillionFuturesFromThreadsReachWaitingFibers) {
  const std::size_t total = testing::Scaled(1000000, 20000);
  constexpr std::size_t kRound = 50000;  // promises alive at once
  constexpr std::size_t kWaiters = 256;
  constexpr std::size_t kSetters = 3;
  std::atomic<std::uint64_t> sum{0};
  std::atomic<std::size_t> received{0};
  std::atomic<std::size_t> misdelivered{0};
  for (std::size_t base = 0; base < total; base += kRound) {
    const std::size_t count = std::min(kRound, total - base);
    std::vector<Promise<std::uint64_t>> promises(count);
    std::vector<Future<std::uint64_t>> futures;
    futures.reserve(count);
    for (auto& p : promises) futures.push_back(p.GetFuture());
    FiberLatch waiters_done(kWaiters);
    for (std::size_t w = 0; w != kWaiters; ++w) {
      ASSERT_TRUE(StartFiberDetached([&, w] {
        for (std::size_t i = w; i < count; i += kWaiters) {
          const std::uint64_t expected = base + i;
          std::uint64_t got;
          if (i % 3 == 0) {
            // The continuation runs on the setter thread; its result comes back here.
            got = BlockingGet(
                      std::move(futures[i]).Then([](std::uint64_t v) { return v * 2; })) /
                  2;
          } else {
            got = BlockingGet(std::move(futures[i]));
          }
          if (got != expected) misdelivered.fetch_add(1, std::memory_order_relaxed);
          sum.fetch_add(got, std::memory_order_relaxed);
          received.fetch_add(1, std::memory_order_relaxed);
        }
        waiters_done.CountDown();
      }));
    }
    std::vector<std::thread> setters;
    for (std::size_t t = 0; t != kSetters; ++t) {
      setters.emplace_back([&, t] {
        // Back to front, so that most waiters are parked when their value comes.
        for (std::size_t i = count - 1 - t; i < count; i -= kSetters) {
          promises[i].SetValue(base + i);
          if (i < kSetters) break;
        }
      });
    }
    for (auto& s : setters) s.join();
    testing::WaitOrAbort(testing::PollUntil([&] { return waiters_done.TryWait(); },
                                            "every waiting fiber to get its values"));
  }
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(misdelivered.load(), 0u);
  EXPECT_EQ(sum.load(), static_cast<std::uint64_t>(total) * (total - 1) / 2);
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(FutureStressTest);

}  // namespace
}  // namespace weft
