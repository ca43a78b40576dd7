// WorkStealingDeque: newest first for the owner, oldest first for thieves,
// growth that keeps every item, and under concurrent thieves every item taken
// exactly once (nothing lost, nothing twice), growth included.
#include "runtime/scheduling_group/policy/v2/work_stealing_deque.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test/test_util.h"

namespace weft::detail {
namespace {

using testing::Scaled;
using testing::Watchdog;

TEST(WorkStealingDeque, OwnerPopsNewestThievesStealOldest) {
  WorkStealingDeque<int> deque(8);
  for (int i = 0; i < 4; ++i) deque.Push(i);
  EXPECT_EQ(deque.Size(), 4u);
  EXPECT_EQ(deque.Pop(), 3);
  StealResult<int> stolen = deque.Steal();
  ASSERT_TRUE(stolen.stolen());
  EXPECT_EQ(*stolen, 0);
  EXPECT_EQ(deque.Pop(), 2);
  EXPECT_EQ(deque.Steal().value(), 1);
  EXPECT_EQ(deque.Size(), 0u);
}

TEST(WorkStealingDeque, EmptyDequeSaysEmptyNotLostRace) {
  WorkStealingDeque<int> deque(2);
  EXPECT_EQ(deque.Pop(), std::nullopt);
  StealResult<int> result = deque.Steal();
  EXPECT_TRUE(result.empty());
  EXPECT_FALSE(result.lost_race());
  EXPECT_FALSE(result);
  deque.Push(7);
  EXPECT_EQ(deque.Pop(), 7);
  EXPECT_TRUE(deque.Steal().empty());
  EXPECT_EQ(deque.Pop(), std::nullopt);  // Popping an empty deque leaves it usable.
  deque.Push(8);
  EXPECT_EQ(deque.Steal().value(), 8);
  EXPECT_EQ(deque.Pop(), std::nullopt);
  EXPECT_EQ(deque.Size(), 0u);
}

TEST(WorkStealingDeque, GrowingPastTheInitialCapacityKeepsEveryItemInOrder) {
  WorkStealingDeque<std::uint32_t> deque(2);
  EXPECT_EQ(deque.capacity(), 2u);
  // Offset the ring first so the items straddle its end when it grows.
  deque.Push(0);
  ASSERT_EQ(deque.Steal().value(), 0u);
  constexpr std::uint32_t kItems = 1000;
  for (std::uint32_t i = 1; i <= kItems; ++i) deque.Push(i);
  EXPECT_EQ(deque.capacity(), 1024u);
  EXPECT_EQ(deque.Size(), kItems);
  // Thieves see the oldest half in push order, the owner the rest newest first.
  for (std::uint32_t i = 1; i <= kItems / 2; ++i) ASSERT_EQ(deque.Steal().value(), i);
  for (std::uint32_t i = kItems; i > kItems / 2; --i) ASSERT_EQ(deque.Pop(), i);
  EXPECT_EQ(deque.Pop(), std::nullopt);
  EXPECT_TRUE(deque.Steal().empty());
  EXPECT_EQ(deque.capacity(), 1024u);  // Never shrinks.
}

TEST(WorkStealingDeque, HoldsPointers) {
  WorkStealingDeque<int*> deque;
  EXPECT_EQ(deque.capacity(), WorkStealingDeque<int*>::kDefaultCapacity);
  int a = 1, b = 2;
  deque.Push(&a);
  deque.Push(&b);
  EXPECT_EQ(deque.Steal().value(), &a);
  EXPECT_EQ(deque.Pop(), &b);
}

TEST(WorkStealingDequeDeathTest, RejectsACapacityThatIsNotAPowerOfTwo) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(WorkStealingDeque<int>(12), "power of two");
  EXPECT_DEATH(WorkStealingDeque<int>(1), "power of two");
}

// One owner pushing bursts and popping some back, GetParam() thieves stealing
// all along; the deque starts at 2 slots, so it grows while thieves read it.
// Every item's flag must end at exactly 1. After each growth the owner waits
// (yielding) until a thief has stolen again, so that on a loaded machine too
// every round interleaves steals with the growing ring.
class WorkStealingDequeStress : public ::testing::TestWithParam<int> {};

TEST_P(WorkStealingDequeStress, EveryItemIsTakenExactlyOnce) {
  const int thieves = GetParam();
  const std::size_t rounds = Scaled(40, 20);
  const std::uint32_t items_per_round = static_cast<std::uint32_t>(Scaled(50000, 20000));
  std::atomic<std::size_t> round_reached{0};
  Watchdog watchdog("the work-stealing deque stress", 2 * testing::kGenerousTimeout,
                    [&] { return "round " + std::to_string(round_reached.load()); });

  std::uint64_t popped_total = 0, stolen_total = 0, lost_races_total = 0;
  std::size_t largest_capacity = 0;
  std::uint64_t growths_total = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t round = 0; round < rounds; ++round) {
    round_reached = round;
    WorkStealingDeque<std::uint32_t> deque(2);
    std::unique_ptr<std::atomic<std::uint8_t>[]> taken(
        new std::atomic<std::uint8_t>[items_per_round]);
    for (std::uint32_t i = 0; i < items_per_round; ++i) taken[i] = 0;
    std::atomic<bool> owner_done{false};
    std::atomic<int> thieves_ready{0};
    std::atomic<std::uint64_t> stolen{0}, lost_races{0};

    std::vector<std::thread> threads;
    for (int t = 0; t < thieves; ++t) {
      threads.emplace_back([&] {
        thieves_ready.fetch_add(1);
        std::uint64_t lost = 0;
        for (int empties = 0;;) {
          StealResult<std::uint32_t> result = deque.Steal();
          if (result.stolen()) {
            taken[*result].fetch_add(1, std::memory_order_relaxed);
            stolen.fetch_add(1, std::memory_order_relaxed);
          } else if (result.lost_race()) {
            ++lost;
          } else if (owner_done.load(std::memory_order_acquire)) {
            break;  // The owner drained the deque before finishing: nothing is left.
          } else if (++empties % 64 == 0) {
            std::this_thread::yield();  // Let the owner run on a small machine.
          }
        }
        lost_races.fetch_add(lost);
      });
    }
    while (thieves_ready.load() < thieves) std::this_thread::yield();

    std::mt19937 random(static_cast<std::uint32_t>(round));
    std::uint64_t popped = 0;
    std::uint32_t next = 0;
    std::size_t capacity = deque.capacity();
    while (next < items_per_round) {
      // A burst of pushes, then some pops: the deque fills (and grows) while
      // thieves drain it from the other end.
      const std::uint32_t burst = 1 + random() % 64;
      for (std::uint32_t i = 0; i < burst && next < items_per_round; ++i) {
        deque.Push(next++);
        if (deque.capacity() != capacity) {
          capacity = deque.capacity();
          ++growths_total;
          const std::uint64_t before = stolen.load();
          while (stolen.load() == before && deque.Size() > 0) std::this_thread::yield();
        }
      }
      for (std::uint32_t pops = random() % (burst / 2 + 1); pops > 0; --pops) {
        std::optional<std::uint32_t> item = deque.Pop();
        if (!item) break;
        taken[*item].fetch_add(1, std::memory_order_relaxed);
        ++popped;
      }
    }
    while (std::optional<std::uint32_t> item = deque.Pop()) {
      taken[*item].fetch_add(1, std::memory_order_relaxed);
      ++popped;
    }
    owner_done.store(true, std::memory_order_release);
    for (std::thread& thread : threads) thread.join();

    std::size_t lost = 0, twice = 0;
    for (std::uint32_t i = 0; i < items_per_round; ++i) {
      const std::uint8_t count = taken[i].load();
      lost += count == 0;
      twice += count > 1;
    }
    ASSERT_EQ(lost, 0u) << "round " << round << ": items never taken";
    ASSERT_EQ(twice, 0u) << "round " << round << ": items taken more than once";
    ASSERT_EQ(popped + stolen.load(), items_per_round) << "round " << round;
    EXPECT_EQ(deque.Size(), 0u);
    popped_total += popped;
    stolen_total += stolen.load();
    lost_races_total += lost_races.load();
    largest_capacity = std::max(largest_capacity, deque.capacity());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The test must have exercised what it claims to: growth and real stealing.
  EXPECT_GT(largest_capacity, 2u);
  EXPECT_GT(growths_total, 0u);
  EXPECT_GT(stolen_total, 0u);
  std::printf(
      "%d thieves, %zu rounds x %u items: %llu popped, %llu stolen, %llu lost races, "
      "%llu growths, largest ring %zu, %.2f s (%.1f M items/s)\n",
      thieves, rounds, items_per_round, static_cast<unsigned long long>(popped_total),
      static_cast<unsigned long long>(stolen_total),
      static_cast<unsigned long long>(lost_races_total),
      static_cast<unsigned long long>(growths_total), largest_capacity, seconds,
      static_cast<double>(rounds * items_per_round) / seconds / 1e6);
}

INSTANTIATE_TEST_SUITE_P(Thieves, WorkStealingDequeStress, ::testing::Values(1, 3, 7),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) +
                                  (info.param == 1 ? "Thief" : "Thieves");
                         });

}  // namespace
}  // namespace weft::detail
