// 10k-fiber stress for the primitives whose own tests use a handful of actors:
// invariants checked, nothing lost, nothing done twice.
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_semaphore.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Scaled;

class SyncStressTest : public testing::WorkerCountTest {
 protected:
  const std::size_t fibers_ = Scaled(10000, 1000);
};

TEST_P(SyncStressTest, ConditionVariableHandsOneTokenToEachOfManyWaiters) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  std::size_t tokens = 0;  // guarded by mutex
  std::vector<std::atomic<int>> got(fibers_);
  FiberLatch waiting(static_cast<std::ptrdiff_t>(fibers_));
  FiberLatch done(static_cast<std::ptrdiff_t>(fibers_));
  for (std::size_t i = 0; i != fibers_; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      std::unique_lock<FiberMutex> lock(mutex);
      waiting.CountDown();
      cv.wait(lock, [&] { return tokens > 0; });
      --tokens;
      ++got[i];
      lock.unlock();
      done.CountDown();
    }));
  }
  waiting.Wait();
  for (std::size_t i = 0; i != fibers_; ++i) {
    std::lock_guard<FiberMutex> lock(mutex);
    ++tokens;
    cv.notify_one();
  }
  done.Wait();
  for (std::size_t i = 0; i != fibers_; ++i) ASSERT_EQ(got[i].load(), 1) << i;
}

TEST_P(SyncStressTest, SemaphoreNeverAdmitsMoreThanItsUnits) {
  constexpr int kUnits = 8;
  FiberSemaphore semaphore(kUnits);
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  FiberLatch done(static_cast<std::ptrdiff_t>(fibers_));
  for (std::size_t i = 0; i != fibers_; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      semaphore.Acquire();
      const int now = ++inside;
      int seen = max_inside.load();
      while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
      }
      this_fiber::Yield();
      --inside;
      semaphore.Release();
      done.CountDown();
    }));
  }
  done.Wait();
  EXPECT_LE(max_inside.load(), kUnits);
  for (int i = 0; i != kUnits; ++i) EXPECT_TRUE(semaphore.TryAcquire());
  EXPECT_FALSE(semaphore.TryAcquire());
}

TEST_P(SyncStressTest, SharedMutexKeepsItsInvariantsWithManyFibers) {
  FiberSharedMutex mutex;
  std::atomic<int> readers{0};
  std::atomic<int> writers{0};
  std::atomic<bool> violated{false};
  long writes = 0;  // guarded by the exclusive lock
  FiberLatch done(static_cast<std::ptrdiff_t>(fibers_));
  for (std::size_t i = 0; i != fibers_; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      if (i % 10 == 0) {
        std::lock_guard<FiberSharedMutex> lock(mutex);
        if (writers.fetch_add(1) != 0 || readers.load() != 0) violated = true;
        ++writes;
        this_fiber::Yield();
        writers.fetch_sub(1);
      } else {
        std::shared_lock<FiberSharedMutex> lock(mutex);
        ++readers;
        if (writers.load() != 0) violated = true;
        this_fiber::Yield();
        --readers;
      }
      done.CountDown();
    }));
  }
  done.Wait();
  EXPECT_FALSE(violated.load());
  std::lock_guard<FiberSharedMutex> lock(mutex);
  EXPECT_EQ(writes, static_cast<long>((fibers_ + 9) / 10));
}

TEST_P(SyncStressTest, ChannelDeliversManyProducersValuesExactlyOnce) {
  FiberChannel<std::size_t> channel(64);
  std::vector<std::atomic<int>> seen(fibers_);
  constexpr int kConsumers = 32;
  FiberLatch produced(static_cast<std::ptrdiff_t>(fibers_));
  FiberLatch consumed(kConsumers);
  for (int c = 0; c != kConsumers; ++c) {
    ASSERT_TRUE(StartFiberDetached([&] {
      while (auto value = channel.Pop()) ++seen[*value];
      consumed.CountDown();
    }));
  }
  for (std::size_t i = 0; i != fibers_; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      EXPECT_TRUE(channel.Push(i));
      produced.CountDown();
    }));
  }
  produced.Wait();
  channel.Close();
  consumed.Wait();
  for (std::size_t i = 0; i != fibers_; ++i) ASSERT_EQ(seen[i].load(), 1) << i;
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(SyncStressTest);

}  // namespace
}  // namespace weft
