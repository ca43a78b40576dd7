// FiberSemaphore and FiberBarrier.
#include "runtime/sync/fiber_semaphore.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sync/fiber_barrier.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberSemaphoreTest : public testing::WaiterNotifierTest {};

TEST_P(FiberSemaphoreTest, AcquireWaitsForARelease) {
  FiberSemaphore semaphore(0);
  std::atomic<int> acquired{0};
  Actor waiting(waiter(), [&] {
    semaphore.Acquire();
    ++acquired;
    semaphore.Acquire();
    ++acquired;
  });
  Actor(notifier(), [&] { semaphore.Release(2); }).Join();
  waiting.Join();
  EXPECT_EQ(acquired.load(), 2);
  EXPECT_FALSE(semaphore.TryAcquire());
}

TEST_P(FiberSemaphoreTest, TimedAcquireTimesOutAndSucceedsOnRelease) {
  FiberSemaphore semaphore(0);
  Actor(waiter(), [&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(semaphore.TryAcquireFor(milliseconds(10)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(10));
    EXPECT_FALSE(semaphore.TryAcquireFor(milliseconds(-1)));
  }).Join();
  std::atomic<bool> got{false};
  Actor waiting(waiter(),
                [&] { got = semaphore.TryAcquireFor(std::chrono::seconds(60)); });
  Actor(notifier(), [&] { semaphore.Release(); }).Join();
  waiting.Join();
  EXPECT_TRUE(got.load());
}

// At most `kUnits` holders at any time, with fibers and threads acquiring.
TEST_P(FiberSemaphoreTest, BoundsConcurrencyUnderStress) {
  constexpr int kUnits = 3;
  FiberSemaphore semaphore(kUnits);
  std::atomic<int> holders{0};
  std::atomic<int> max_holders{0};
  const int rounds = static_cast<int>(Scaled(5000, 500));
  {
    std::vector<Actor> actors;
    for (int a = 0; a != 8; ++a) {
      actors.emplace_back(a % 2 == 0 ? waiter() : notifier(), [&, a] {
        for (int i = 0; i != rounds; ++i) {
          if (a % 3 == 0) {
            while (!semaphore.TryAcquireFor(std::chrono::microseconds(50))) {
            }
          } else {
            semaphore.Acquire();
          }
          const int now = ++holders;
          int seen = max_holders.load();
          while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
          }
          if (i % 16 == 0) this_fiber::Yield();
          --holders;
          semaphore.Release();
        }
      });
    }
  }
  EXPECT_LE(max_holders.load(), kUnits);
  for (int i = 0; i != kUnits; ++i) EXPECT_TRUE(semaphore.TryAcquire()) << i;
  EXPECT_FALSE(semaphore.TryAcquire());
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberSemaphoreTest);

// Liveness under contention: many more contenders than units (fibers and two
// plain threads). Holders arrive in epochs of as many holders as there are
// units, and each keeps its unit until every holder of its epoch has arrived
// (waiting on the epoch's latch), so an epoch completes only with all units in
// use at once; a unit stuck with a waiter that never runs (or lost) stalls an
// epoch, and its latch times out. Afterwards every unit is free again, and
// none more.
class SemaphoreLivenessTest
    : public ::testing::TestWithParam<std::tuple<std::size_t, std::ptrdiff_t>> {
 protected:
  void SetUp() override { StartRuntime(testing::OptionsWithWorkers(workers())); }
  void TearDown() override { TerminateRuntime(); }
  std::size_t workers() const { return std::get<0>(GetParam()); }
  std::ptrdiff_t units() const { return std::get<1>(GetParam()); }
};

TEST_P(SemaphoreLivenessTest, EveryEpochHasAllUnitsInUseAtOnceAndNoneIsLost) {
  const std::ptrdiff_t kUnits = units();
  const int contenders = static_cast<int>(Scaled(400, 64));
  constexpr int kPlainThreads = 2;
  FiberSemaphore semaphore(kUnits);
  std::vector<std::unique_ptr<FiberLatch>> epochs(Scaled(4000, 500) / kUnits);
  for (auto& epoch : epochs) epoch = std::make_unique<FiberLatch>(kUnits);
  std::atomic<std::ptrdiff_t> inside{0};
  std::atomic<std::ptrdiff_t> most_inside{0};
  std::atomic<long> arrivals{0};
  std::atomic<bool> stalled{false};
  // Contenders keep coming back until every epoch is taken, so that the last
  // epochs find distinct contenders too.
  const long total = static_cast<long>(epochs.size()) * kUnits;
  auto contend = [&] {
    while (!stalled.load()) {
      semaphore.Acquire();
      const std::ptrdiff_t now = inside.fetch_add(1) + 1;
      std::ptrdiff_t most = most_inside.load();
      while (now > most && !most_inside.compare_exchange_weak(most, now)) {
      }
      const long arrival = arrivals.fetch_add(1);
      if (arrival < total) {
        FiberLatch& epoch = *epochs[arrival / kUnits];
        epoch.CountDown();
        if (!epoch.WaitFor(testing::kGenerousTimeout)) stalled = true;
      }
      inside.fetch_sub(1);
      semaphore.Release();
      if (arrival >= total) break;
    }
  };
  {
    std::vector<Actor> actors;
    for (int i = 0; i != contenders; ++i) {
      actors.emplace_back(
          i < kPlainThreads ? testing::Side::kThread : testing::Side::kFiber, contend);
    }
  }
  ASSERT_FALSE(stalled.load()) << "an epoch never had all " << kUnits
                               << " units in use at once";
  EXPECT_EQ(most_inside.load(), kUnits);
  EXPECT_GE(arrivals.load(), total);
  for (std::ptrdiff_t i = 0; i != kUnits; ++i) EXPECT_TRUE(semaphore.TryAcquire()) << i;
  EXPECT_FALSE(semaphore.TryAcquire()) << "a unit appeared from nowhere";
}

INSTANTIATE_TEST_SUITE_P(
    WorkersAndUnits, SemaphoreLivenessTest,
    ::testing::Combine(::testing::Values(std::size_t{2}, std::size_t{4}),
                       ::testing::Values(std::ptrdiff_t{1}, std::ptrdiff_t{3},
                                         std::ptrdiff_t{16})),
    [](const auto& info) {
      return std::to_string(std::get<0>(info.param)) + "Workers" +
             std::to_string(std::get<1>(info.param)) + "Units";
    });

TEST(FiberBarrier, PartiesMeetInEveryPhase) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  constexpr int kFibers = 24;
  constexpr int kThreads = 4;
  constexpr int kParties = kFibers + kThreads;
  const int phases = static_cast<int>(Scaled(300, 30));
  FiberBarrier barrier(kParties);
  std::vector<std::atomic<int>> arrivals(phases);
  std::atomic<int> behind{0};
  auto party = [&] {
    for (int p = 0; p != phases; ++p) {
      ++arrivals[p];
      barrier.ArriveAndWait();
      // Everyone arrived for this phase before anyone left it.
      if (arrivals[p].load() != kParties) ++behind;
    }
  };
  std::vector<testing::Actor> actors;
  for (int i = 0; i != kFibers; ++i) actors.emplace_back(testing::Side::kFiber, party);
  for (int i = 0; i != kThreads; ++i) actors.emplace_back(testing::Side::kThread, party);
  for (auto& actor : actors) actor.Join();
  EXPECT_EQ(behind.load(), 0);
}

TEST(FiberBarrier, TenThousandFibersOnePhase) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const auto fibers = static_cast<std::ptrdiff_t>(Scaled(10000, 1000));
  FiberBarrier barrier(fibers + 1);
  std::atomic<std::ptrdiff_t> passed{0};
  for (std::ptrdiff_t i = 0; i != fibers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      barrier.ArriveAndWait();
      ++passed;
    }));
  }
  barrier.ArriveAndWait();  // a plain thread is the last party
  WaitOrAbort(PollUntil([&] { return passed.load() == fibers; }, "every fiber to pass"));
}

TEST(FiberSemaphoreDeathTest, NegativeCountsAbort) {
  EXPECT_DEATH(FiberSemaphore(-1), "negative count");
  FiberSemaphore semaphore(0);
  EXPECT_DEATH(semaphore.Release(-1), "must not be negative");
  EXPECT_DEATH(FiberBarrier(0), "at least one party");
}

}  // namespace
}  // namespace weft
