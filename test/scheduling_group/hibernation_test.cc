// Hibernating parked fibers (runtime/scheduling_group/hibernator.h): a fiber
// whose stack pages were given back resumes exactly as it parked, its stack at
// the same addresses, on any worker; others may touch its locals meanwhile; a
// wake racing the hibernator loses nothing.
#include <errno.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/detail/sanitizers.h"
#include "runtime/fiber.h"
#include "runtime/fiber_local.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/hibernator.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;

// Long enough that the hibernator's own passes never run during a test: the
// tests ask for passes (HibernateParkedFibers) when they want them.
constexpr std::size_t kNeverOnItsOwn = 3'600'000;

// Skips the test, saying why, where this process cannot hibernate fibers.
#define SKIP_UNLESS_HIBERNATION_WORKS()                           \
  do {                                                            \
    std::string why;                                              \
    if (!detail::HibernationSupported(&why)) GTEST_SKIP() << why; \
  } while (false)

RuntimeOptions HibernatingOptions(std::size_t workers, bool chaos) {
  RuntimeOptions options = testing::OptionsWithWorkers(workers);
  options.hibernate_parked_fibers_after_ms = kNeverOnItsOwn;
  options.chaos_migration = chaos;
  return options;
}

// Passes until `count` fibers are hibernated at once; fails after a minute.
void HibernateUntil(std::uint64_t count) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (GetRuntimeStats().hibernation.hibernated_now < count) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up)
        << "only " << GetRuntimeStats().hibernation.hibernated_now << " of " << count
        << " parked fibers hibernated";
    detail::HibernateParkedFibers(milliseconds(0));
  }
}

// Not inlined, so that the compiler cannot reuse one thread's errno or id after
// a switch (docs/design.md).
__attribute__((noinline)) void SetErrno(int value) { errno = value; }
__attribute__((noinline)) int GetErrno() { return errno; }

__attribute__((noinline)) std::thread::id ThreadOf() {
  asm volatile("" ::: "memory");
  return std::this_thread::get_id();
}

TEST(HibernationTest, AFiberResumesWithItsLocalsErrnoAndFiberLocalsOnAnotherWorker) {
  SKIP_UNLESS_HIBERNATION_WORKS();
  constexpr int kFibers = 64;
  constexpr int kWords = 100;
  Runtime runtime(HibernatingOptions(2, /*chaos=*/true));
  FiberLocal<int> local_value;
  FiberLatch go(1);
  FiberLatch finished(kFibers);
  std::vector<std::atomic<int*>> words(kFibers);
  std::atomic<int> parked_on_other_thread{0};
  std::atomic<int> failures{0};
  for (int i = 0; i < kFibers; ++i) {
    StartFiberDetached([&, i] {
      int mine[kWords];
      for (int w = 0; w < kWords; ++w) mine[w] = i * 1000 + w;
      int* self_pointer = &mine[kWords / 2];  // a pointer into its own stack
      *local_value = i + 7;
      words[i].store(mine, std::memory_order_release);
      SetErrno(1000 + i);
      const std::thread::id before = ThreadOf();
      go.Wait();
      const int saved_errno = GetErrno();
      if (ThreadOf() != before) parked_on_other_thread.fetch_add(1);
      bool ok = saved_errno == 1000 + i && *local_value == i + 7 &&
                self_pointer == &mine[kWords / 2] &&
                *self_pointer == i * 1000 + kWords / 2;
      // Word 0 was rewritten by another fiber while this one was hibernated.
      ok = ok && mine[0] == -i;
      for (int w = 1; w < kWords; ++w) ok = ok && mine[w] == i * 1000 + w;
      if (!ok) {
        failures.fetch_add(1);
        ADD_FAILURE() << "fiber " << i << ": errno " << saved_errno << " local "
                      << *local_value << " word0 " << mine[0] << " self "
                      << (self_pointer == &mine[kWords / 2]) << " word1 " << mine[1];
      }
      finished.CountDown();
    });
  }
  // Every fiber has published its words; wait until all of them sleep.
  for (auto& w : words) {
    while (w.load(std::memory_order_acquire) == nullptr) std::this_thread::yield();
  }
  HibernateUntil(kFibers);
  const HibernationStats asleep = GetRuntimeStats().hibernation;
  EXPECT_TRUE(asleep.enabled);
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
  constexpr std::uint64_t kMostBytes = 4096;  // redzones and bigger frames
#else
  constexpr std::uint64_t kMostBytes = 2048;
#endif
  EXPECT_LT(asleep.saved_bytes_now / asleep.hibernated_now, kMostBytes)
      << "a parked fiber's copy (its 400-byte array included) must be far smaller than "
         "its page";

  // Other fibers read and write the sleepers' locals: each touch puts the
  // stack back.
  std::atomic<int> read_right{0};
  Fiber toucher([&] {
    for (int i = 0; i < kFibers; ++i) {
      int* mine = words[i].load(std::memory_order_acquire);
      if (mine[1] == i * 1000 + 1) read_right.fetch_add(1);
      mine[0] = -i;
    }
  });
  toucher.Join();
  EXPECT_EQ(read_right.load(), kFibers);
  EXPECT_GE(GetRuntimeStats().hibernation.wakes, static_cast<std::uint64_t>(kFibers));

  // Hibernate them again, then wake them all.
  HibernateUntil(kFibers);
  go.CountDown();
  finished.Wait();
  EXPECT_EQ(failures.load(), 0);
  // Chaos mode sends every woken fiber to a worker other than its last.
  EXPECT_GT(parked_on_other_thread.load(), 0);
  const HibernationStats after = GetRuntimeStats().hibernation;
  EXPECT_EQ(after.hibernated_now, 0u);
  EXPECT_EQ(after.saved_bytes_now, 0u);
  EXPECT_GE(after.hibernations, 2u * kFibers);
}

TEST(HibernationTest, PassesHibernateOnlyFibersParkedForTheThreshold) {
  SKIP_UNLESS_HIBERNATION_WORKS();
  Runtime runtime(HibernatingOptions(2, /*chaos=*/false));
  FiberLatch go(1);
  std::atomic<bool> parked{false};
  Fiber sleeper([&] {
    parked.store(true);
    go.Wait();
  });
  while (!parked.load()) std::this_thread::yield();
  // A pass notes a park it has not seen; an hour later is never reached here.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(detail::HibernateParkedFibers(milliseconds(3'600'000)), 0u);
  }
  EXPECT_EQ(GetRuntimeStats().hibernation.hibernated_now, 0u);
  HibernateUntil(1);  // while a pass with no threshold takes it
  go.CountDown();
  sleeper.Join();
}

// Wakers, parkers and hibernation passes all at once: every handoff arrives,
// every fiber's frames survive (its running sum lives on its stack). A plain
// thread hands values to fibers parked on condition variables while another
// runs passes that hibernate whatever is parked at that moment.
TEST(HibernationTest, WakesRacingHibernationLoseNothing) {
  SKIP_UNLESS_HIBERNATION_WORKS();
  constexpr int kFibers = 16;
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
  constexpr int kRounds = 100;
#else
  constexpr int kRounds = 300;
#endif
  Runtime runtime(HibernatingOptions(2, /*chaos=*/false));
  struct Slot {
    FiberMutex mutex;
    FiberConditionVariable cv;
    int value = 0;  // guarded by mutex; 0 = empty
  };
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < kFibers; ++i) slots.push_back(std::make_unique<Slot>());
  std::atomic<std::int64_t> received_total{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    Slot* slot = slots[i].get();
    fibers.emplace_back([slot, &received_total] {
      std::int64_t sum = 0;  // on this fiber's stack, across every park
      for (;;) {
        std::unique_lock<FiberMutex> lock(slot->mutex);
        slot->cv.wait(lock, [&] { return slot->value != 0; });
        if (slot->value < 0) break;  // the end
        sum += slot->value;
        slot->value = 0;
        slot->cv.notify_all();
      }
      received_total.fetch_add(sum);
    });
  }
  std::atomic<bool> done{false};
  std::thread passes([&] {
    while (!done.load()) detail::HibernateParkedFibers(milliseconds(0));
  });
  // Rounds go on until the race has happened often enough (a run on an idle
  // machine can be over before the first pass).
  std::int64_t sent_total = 0;
  std::thread waker([&] {
    auto hand = [&](Slot& slot, int value) {
      std::unique_lock<FiberMutex> lock(slot.mutex);
      slot.cv.wait(lock, [&] { return slot.value == 0; });
      slot.value = value;
      slot.cv.notify_all();
    };
    std::uint32_t pace = 1;
    for (int r = 1; r <= kRounds || (GetRuntimeStats().hibernation.hibernations < 100 &&
                                     r <= 100 * kRounds);
         ++r) {
      for (auto& slot : slots) {
        hand(*slot, r);
        sent_total += r;
        // A varying pause, so that wakes land before, during and after passes.
        pace = pace * 1103515245 + 12345;
        for (volatile std::uint32_t spin = (pace >> 16) % 2000; spin > 0; --spin) {
        }
      }
    }
    for (auto& slot : slots) hand(*slot, -1);
  });
  waker.join();
  for (Fiber& fiber : fibers) fiber.Join();
  done.store(true);
  passes.join();
  EXPECT_EQ(received_total.load(), sent_total);
  const HibernationStats stats = GetRuntimeStats().hibernation;
  EXPECT_GT(stats.hibernations, 0u) << "the race never happened";
  EXPECT_EQ(stats.hibernated_now, 0u);
  EXPECT_EQ(stats.hibernations, stats.wakes);
}

TEST(HibernationTest, TheHibernatorsOwnPassesTakeAFiberParkedForLong) {
  SKIP_UNLESS_HIBERNATION_WORKS();
  RuntimeOptions options = testing::OptionsWithWorkers(2);
  options.hibernate_parked_fibers_after_ms = 20;
  Runtime runtime(options);
  FiberLatch go(1);
  int on_stack = 42;
  Fiber sleeper([&] {
    int mine = on_stack;
    go.Wait();
    on_stack = mine + 1;
  });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (GetRuntimeStats().hibernation.hibernated_now == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "never hibernated";
    std::this_thread::yield();
  }
  go.CountDown();
  sleeper.Join();
  EXPECT_EQ(on_stack, 43);
}

TEST(HibernationTest, ThresholdOutOfRangeIsRejectedNamingTheFlag) {
  RuntimeOptions options = testing::OptionsWithWorkers(1);
  options.hibernate_parked_fibers_after_ms = 86'400'001;
  try {
    Runtime runtime(options);
    FAIL() << "accepted an out-of-range threshold";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--weft_fiber_hibernate_after_ms"));
  }
}

// The guard page is untouched by hibernation: a fiber that overflows after
// having been hibernated is still diagnosed.
TEST(HibernationDeathTest, OverflowAfterHibernationIsStillDiagnosed) {
  SKIP_UNLESS_HIBERNATION_WORKS();
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        RuntimeOptions options = HibernatingOptions(2, /*chaos=*/false);
        options.stack_size = 64 * 1024;
        Runtime runtime(options);
        FiberLatch go(1);
        std::atomic<bool> parked{false};
        Fiber fiber([&] {
          parked.store(true);
          go.Wait();
          testing::RecurseUntilOverflow(0);
        });
        while (!parked.load()) std::this_thread::yield();
        HibernateUntil(1);
        go.CountDown();
        fiber.Join();
      },
      ::testing::KilledBySignal(SIGSEGV),
      "fiber stack overflow: fiber [0-9]+ ran past the end of its 65536-byte stack");
}

}  // namespace
}  // namespace weft
