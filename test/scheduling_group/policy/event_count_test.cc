// EventCount: a notify between PrepareWait and CommitWait is not lost, a notify
// with nobody waiting leaves nothing behind, NotifyOne wakes one sleeper and
// NotifyAll every one, and producers and sleeping consumers never strand an item.
#include "runtime/scheduling_group/policy/v2/event_count.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "test/test_util.h"

namespace weft::detail {
namespace {

using testing::PollUntil;
using testing::Scaled;
using testing::Watchdog;

TEST(EventCount, NotifyBetweenPrepareAndCommitIsNotLost) {
  Watchdog watchdog("CommitWait after a NotifyOne to return");
  EventCount event_count(1);
  EventCount::Waiter* w = event_count.waiter(0);
  event_count.PrepareWait(w);
  event_count.NotifyOne();
  event_count.CommitWait(w);  // Hangs (and the watchdog aborts) if the notify was lost.
  EXPECT_EQ(event_count.PrewaitersHint(), 0u);
  EXPECT_EQ(event_count.SleepersHint(), 0u);
}

TEST(EventCount, NotifyAllBetweenPrepareAndCommitIsNotLost) {
  Watchdog watchdog("CommitWait after a NotifyAll to return");
  EventCount event_count(2);
  EventCount::Waiter* a = event_count.waiter(0);
  EventCount::Waiter* b = event_count.waiter(1);
  event_count.PrepareWait(a);
  event_count.PrepareWait(b);
  event_count.NotifyAll();
  event_count.CommitWait(b);
  event_count.CommitWait(a);
  EXPECT_EQ(event_count.PrewaitersHint(), 0u);
}

// Commits `w` on a thread of its own; the thread ends when CommitWait returns.
std::thread CommitOnAThread(EventCount* event_count, EventCount::Waiter* w,
                            std::atomic<int>* returned) {
  return std::thread([=] {
    event_count->CommitWait(w);
    returned->fetch_add(1);
  });
}

TEST(EventCount, NotifyWithNobodyWaitingLeavesNoSignalBehind) {
  Watchdog watchdog("the sleeper to be woken");
  EventCount event_count(1);
  EventCount::Waiter* w = event_count.waiter(0);
  event_count.NotifyOne();
  event_count.NotifyAll();
  event_count.PrepareWait(w);
  std::atomic<int> returned{0};
  std::thread sleeper = CommitOnAThread(&event_count, w, &returned);
  // The earlier notifies must not let it through: it reaches the stack of sleepers.
  ASSERT_TRUE(PollUntil([&] { return event_count.SleepersHint() == 1; }, "a sleeper"));
  EXPECT_EQ(returned.load(), 0);
  event_count.NotifyOne();
  sleeper.join();
  EXPECT_EQ(returned.load(), 1);
}

TEST(EventCount, CancelTakesBackTheSignalOfItsOnlyPrewaiter) {
  Watchdog watchdog("the sleeper to be woken");
  EventCount event_count(1);
  EventCount::Waiter* w = event_count.waiter(0);
  event_count.PrepareWait(w);
  event_count.NotifyOne();  // Signals w, which then finds work and cancels.
  event_count.CancelWait(w);
  event_count.PrepareWait(w);
  std::atomic<int> returned{0};
  std::thread sleeper = CommitOnAThread(&event_count, w, &returned);
  ASSERT_TRUE(PollUntil([&] { return event_count.SleepersHint() == 1; }, "a sleeper"));
  EXPECT_EQ(returned.load(), 0);
  event_count.NotifyOne();
  sleeper.join();
}

TEST(EventCount, CancelLeavesTheSignalToTheOtherPrewaiters) {
  Watchdog watchdog("CommitWait of a signalled pre-waiter to return");
  EventCount event_count(2);
  EventCount::Waiter* a = event_count.waiter(0);
  EventCount::Waiter* b = event_count.waiter(1);
  event_count.PrepareWait(a);
  event_count.PrepareWait(b);
  event_count.NotifyOne();  // One signal for two pre-waiters: whoever commits keeps it.
  event_count.CancelWait(a);
  event_count.CommitWait(b);  // Must not sleep.
}

TEST(EventCount, NotifyOneWakesOneSleeperAtATime) {
  Watchdog watchdog("the sleepers to be woken");
  constexpr int kSleepers = 3;
  EventCount event_count(kSleepers);
  std::atomic<int> returned{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kSleepers; ++i) {
    event_count.PrepareWait(event_count.waiter(i));
    threads.push_back(CommitOnAThread(&event_count, event_count.waiter(i), &returned));
  }
  ASSERT_TRUE(PollUntil([&] { return event_count.SleepersHint() == kSleepers; },
                        "every thread to sleep"));
  for (int woken = 1; woken <= kSleepers; ++woken) {
    event_count.NotifyOne();
    ASSERT_TRUE(PollUntil([&] { return returned.load() == woken; },
                          std::to_string(woken) + " threads to return"));
    // Only a notify takes a sleeper off the stack, so exactly one left it.
    EXPECT_EQ(event_count.SleepersHint(), static_cast<std::size_t>(kSleepers - woken));
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(EventCount, NotifyAllWakesEveryCommittedWaiter) {
  Watchdog watchdog("NotifyAll to wake every sleeper");
  constexpr int kSleepers = 8;
  EventCount event_count(kSleepers + 1);
  std::atomic<int> returned{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kSleepers; ++i) {
    event_count.PrepareWait(event_count.waiter(i));
    threads.push_back(CommitOnAThread(&event_count, event_count.waiter(i), &returned));
  }
  ASSERT_TRUE(PollUntil([&] { return event_count.SleepersHint() == kSleepers; },
                        "every thread to sleep"));
  // A pre-waiter at the time of NotifyAll is released too.
  EventCount::Waiter* late = event_count.waiter(kSleepers);
  event_count.PrepareWait(late);
  event_count.NotifyAll();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(returned.load(), kSleepers);
  event_count.CommitWait(late);
  EXPECT_EQ(event_count.SleepersHint(), 0u);
  EXPECT_EQ(event_count.PrewaitersHint(), 0u);
}

TEST(EventCountDeathTest, AbortsOnCommitWithoutPrepare) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EventCount event_count(1);
  EXPECT_DEATH(event_count.CommitWait(event_count.waiter(0)), "without PrepareWait");
  EXPECT_DEATH(EventCount(0), "capacity");
  EXPECT_DEATH(EventCount(EventCount::kMaxWaiters + 1), "capacity");
}

// Producers add items to a shared counter and notify; consumers take items and,
// when the counter is zero, sleep through the event count. Every item must be
// consumed, and every consumer must finish: one that slept through the last
// notify would hang the test (the watchdog then aborts it).
class EventCountStress : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(EventCountStress, EveryItemIsConsumedAndNoConsumerSleepsForever) {
  const int producers = std::get<0>(GetParam());
  const int consumers = std::get<1>(GetParam());
  const std::int64_t per_producer = static_cast<std::int64_t>(Scaled(200000, 50000));
  const std::int64_t total = per_producer * producers;

  EventCount event_count(static_cast<std::size_t>(consumers));
  std::atomic<std::int64_t> available{0};  // The "queue": items not yet taken.
  std::atomic<std::int64_t> consumed{0};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> commits{0}, cancels{0};
  Watchdog watchdog("every item to be consumed", 2 * testing::kGenerousTimeout, [&] {
    return "consumed " + std::to_string(consumed.load()) + " of " +
           std::to_string(total) + ", available " + std::to_string(available.load()) +
           ", sleepers " + std::to_string(event_count.SleepersHint());
  });

  auto take_one = [&] {
    std::int64_t n = available.load(std::memory_order_relaxed);
    while (n > 0) {
      if (available.compare_exchange_weak(n, n - 1, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  };

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      EventCount::Waiter* w = event_count.waiter(static_cast<std::size_t>(c));
      while (!done.load(std::memory_order_acquire)) {
        if (take_one()) {
          if (consumed.fetch_add(1) + 1 == total) {
            done.store(true, std::memory_order_release);
            event_count.NotifyAll();
          }
          continue;
        }
        event_count.PrepareWait(w);
        if (available.load(std::memory_order_relaxed) > 0 ||
            done.load(std::memory_order_acquire)) {
          event_count.CancelWait(w);
          cancels.fetch_add(1, std::memory_order_relaxed);
        } else {
          event_count.CommitWait(w);
          commits.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 random(static_cast<std::uint32_t>(p));
      for (std::int64_t i = 0; i < per_producer;) {
        for (std::int64_t burst = 1 + random() % 32; burst > 0 && i < per_producer;
             --burst, ++i) {
          available.fetch_add(1, std::memory_order_release);
          event_count.NotifyOne();
        }
        // Every few bursts, let the consumers drain the counter so that they go to
        // sleep and the next burst must wake them. This only watches the counter;
        // if a wake-up were lost it would never reach zero and the watchdog fires.
        if (random() % 4 == 0) {
          while (available.load(std::memory_order_relaxed) > 0) std::this_thread::yield();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  EXPECT_EQ(consumed.load(), total);
  EXPECT_EQ(available.load(), 0);
  EXPECT_EQ(event_count.SleepersHint(), 0u);
  EXPECT_EQ(event_count.PrewaitersHint(), 0u);
  std::printf(
      "%d producers, %d consumers, %lld items: %llu commits, %llu cancels, %.2f s\n",
      producers, consumers, static_cast<long long>(total),
      static_cast<unsigned long long>(commits.load()),
      static_cast<unsigned long long>(cancels.load()), seconds);
}

INSTANTIATE_TEST_SUITE_P(ProducersConsumers, EventCountStress,
                         ::testing::Values(std::make_tuple(1, 1), std::make_tuple(1, 4),
                                           std::make_tuple(2, 2), std::make_tuple(4, 8)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
                           return std::to_string(std::get<0>(info.param)) + "Producers" +
                                  std::to_string(std::get<1>(info.param)) + "Consumers";
                         });

}  // namespace
}  // namespace weft::detail
