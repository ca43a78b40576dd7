// FiberSharedMutex and FiberSeqLock.
#include "runtime/sync/fiber_shared_mutex.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sync/fiber_seq_lock.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberSharedMutexTest : public testing::WaiterNotifierTest {};

// Readers (one side) and writers (the other) check the invariants of a
// reader-writer lock on every entry: a writer is alone, readers see no writer.
TEST_P(FiberSharedMutexTest, WritersAreExclusiveAndReadersShare) {
  FiberSharedMutex mutex;
  std::atomic<int> readers{0};
  std::atomic<int> writers{0};
  std::atomic<int> max_readers{0};
  std::atomic<bool> violated{false};
  long value = 0;  // written under the exclusive lock
  const int rounds = static_cast<int>(Scaled(5000, 500));
  {
    std::vector<Actor> actors;
    for (int r = 0; r != 6; ++r) {
      actors.emplace_back(waiter(), [&] {
        for (int i = 0; i != rounds; ++i) {
          std::shared_lock<FiberSharedMutex> lock(mutex);
          const int now = ++readers;
          int seen = max_readers.load();
          while (now > seen && !max_readers.compare_exchange_weak(seen, now)) {
          }
          if (writers.load() != 0) violated = true;
          if (i % 8 == 0) this_fiber::Yield();
          --readers;
        }
      });
    }
    for (int w = 0; w != 2; ++w) {
      actors.emplace_back(notifier(), [&] {
        for (int i = 0; i != rounds / 4; ++i) {
          std::unique_lock<FiberSharedMutex> lock(mutex);
          if (writers.fetch_add(1) != 0 || readers.load() != 0) violated = true;
          ++value;
          writers.fetch_sub(1);
        }
      });
    }
  }
  EXPECT_FALSE(violated.load());
  EXPECT_EQ(value, 2L * (rounds / 4));
}

// With readers holding the lock in turns without ever letting it go idle, a
// writer must still get in (readers queue behind a waiting writer).
TEST_P(FiberSharedMutexTest, AStreamOfReadersDoesNotStarveAWriter) {
  FiberSharedMutex mutex;
  std::atomic<bool> written{false};
  std::atomic<bool> starved{false};
  std::atomic<int> reading{0};
  {
    std::vector<Actor> readers;
    for (int r = 0; r != 4; ++r) {
      readers.emplace_back(waiter(), [&] {
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        ++reading;
        while (!written.load()) {
          {
            std::shared_lock<FiberSharedMutex> lock(mutex);
            for (int i = 0; i != 50; ++i) detail::CpuRelax();
          }
          if (std::chrono::steady_clock::now() > give_up) {
            starved = true;
            break;
          }
          // Reader fibers that never yield would keep a writer fiber from even
          // being scheduled on a worker; that is not what this test is about.
          this_fiber::Yield();
        }
      });
    }
    WaitOrAbort(PollUntil([&] { return reading.load() == 4; }, "the readers"));
    Actor(notifier(), [&] {
      std::lock_guard<FiberSharedMutex> lock(mutex);
      written = true;
    }).Join();
  }
  EXPECT_FALSE(starved.load());
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberSharedMutexTest);

TEST(FiberSharedMutex, TryLocksReflectTheState) {
  FiberSharedMutex mutex;
  EXPECT_TRUE(mutex.try_lock_shared());
  EXPECT_TRUE(mutex.try_lock_shared());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock_shared();
  mutex.unlock_shared();
  EXPECT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock_shared());
  mutex.unlock();
}

TEST(FiberSharedMutexDeathTest, MisuseAborts) {
  FiberSharedMutex mutex;
  EXPECT_DEATH(mutex.unlock_shared(), "not locked for reading");
  EXPECT_DEATH(mutex.unlock(), "not locked for writing");
}

// A writer keeps two atomics equal; readers must never accept a section in
// which they differ.
TEST(FiberSeqLock, ReadersNeverAcceptATornRead) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  FiberSeqLock lock;
  std::atomic<long> a{0};
  std::atomic<long> b{0};
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0};
  std::atomic<long> reads{0};
  const long writes = static_cast<long>(Scaled(50000, 5000));
  auto reader = [&] {
    while (!stop.load()) {
      long x;
      long y;
      std::uint64_t seq;
      do {
        seq = lock.ReadBegin();
        x = a.load(std::memory_order_relaxed);
        y = b.load(std::memory_order_relaxed);
      } while (lock.ReadRetry(seq));
      if (x != y) ++torn;
      ++reads;
    }
  };
  std::vector<Actor> readers;
  readers.emplace_back(testing::Side::kFiber, reader);
  readers.emplace_back(testing::Side::kFiber, reader);
  readers.emplace_back(testing::Side::kThread, reader);
  Actor writer(testing::Side::kFiber, [&] {
    for (long i = 1; i <= writes; ++i) {
      std::lock_guard<FiberSeqLock> guard(lock);
      a.store(i, std::memory_order_relaxed);
      if (i % 64 == 0) this_fiber::Yield();  // a long write now and then
      b.store(i, std::memory_order_relaxed);
    }
  });
  writer.Join();
  stop = true;
  for (Actor& r : readers) r.Join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(a.load(), writes);
}

}  // namespace
}  // namespace weft
