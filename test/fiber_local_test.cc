// FiberLocal<T> and errno: per-fiber state that follows a fiber across switches
// and worker threads. Built at -O3 (see test/CMakeLists.txt): the compiler must
// not carry a thread-local address from before a switch to after it.
#include "runtime/fiber_local.h"

#include <atomic>
#include <cerrno>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

// Counts its live instances.
struct Counted {
  static std::atomic<int> alive;
  static std::atomic<int> constructed;
  Counted() {
    alive.fetch_add(1);
    constructed.fetch_add(1);
  }
  ~Counted() { alive.fetch_sub(1); }
  int value = 0;
};
std::atomic<int> Counted::alive{0};
std::atomic<int> Counted::constructed{0};

class FiberLocalTest : public testing::WorkerCountTest {
 protected:
  void SetUp() override {
    WorkerCountTest::SetUp();
    Counted::alive = 0;
    Counted::constructed = 0;
  }
};

TEST_P(FiberLocalTest, EachFiberHasItsOwnInstanceThatFollowsItAcrossSwitches) {
  FiberLocal<Counted> local;
  constexpr int kFibers = 64;
  std::atomic<int> mismatches{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&local, &mismatches, i] {
      local->value = i;
      for (int round = 0; round < 50; ++round) {
        this_fiber::Yield();
        if (round % 10 == 0) this_fiber::SleepFor(std::chrono::microseconds(50));
        if (local->value != i || local.get() != &*local) mismatches.fetch_add(1);
      }
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(Counted::constructed.load(), kFibers);
  EXPECT_EQ(Counted::alive.load(), 0) << "an instance outlived its fiber";
}

TEST_P(FiberLocalTest, IsCreatedOnFirstAccessAndDestroyedBeforeJoinReturns) {
  FiberLocal<Counted> local;
  Fiber untouched([] { this_fiber::Yield(); });
  untouched.Join();
  EXPECT_EQ(Counted::constructed.load(), 0);

  FiberLatch accessed(1);
  FiberLatch finish(1);
  Fiber user([&] {
    local->value = 7;
    accessed.CountDown();
    finish.Wait();
  });
  accessed.Wait();
  EXPECT_EQ(Counted::alive.load(), 1);
  finish.CountDown();
  user.Join();
  EXPECT_EQ(Counted::alive.load(), 0);
}

TEST_P(FiberLocalTest, PlainThreadsHaveTheirOwnInstance) {
  FiberLocal<Counted> local;
  // Fresh threads: the test's own thread may hold values of earlier tests.
  std::thread first([&local] {
    local->value = 1;
    std::thread second([&local] {
      EXPECT_EQ(local->value, 0);
      local->value = 2;
    });
    second.join();
    EXPECT_EQ(local->value, 1);
    EXPECT_EQ(Counted::alive.load(), 1) << "the second thread's instance outlived it";
  });
  first.join();
  EXPECT_EQ(Counted::constructed.load(), 2);
  EXPECT_EQ(Counted::alive.load(), 0);
}

TEST_P(FiberLocalTest, ANewFiberLocalNeverSeesADeadOnesValue) {
  FiberLatch first_done(1);
  FiberLatch second_ready(1);
  std::string seen = "unset";
  Fiber fiber([&] {
    {
      auto* dead = new FiberLocal<Counted>;
      (*dead)->value = 99;
      delete dead;  // its slot is free again; the value stays until the fiber exits
    }
    first_done.CountDown();
    second_ready.Wait();
  });
  first_done.Wait();
  FiberLocal<std::string> reused;  // likely the same slot
  second_ready.CountDown();
  fiber.Join();
  EXPECT_EQ(Counted::alive.load(), 0) << "the dead FiberLocal's value leaked";
  Fiber reader([&] { seen = *reused; });
  reader.Join();
  EXPECT_EQ(seen, "");
}

TEST_P(FiberLocalTest, DestructorsMayUseOtherFiberLocals) {
  static FiberLocal<int> counter_at_exit;
  struct UsesAnother {
    std::atomic<int>* seen;
    ~UsesAnother() { seen->store(++*counter_at_exit); }
  };
  std::atomic<int> seen{0};
  FiberLocal<UsesAnother> local;
  Fiber fiber([&] { local->seen = &seen; });
  fiber.Join();
  EXPECT_EQ(seen.load(), 1);
}

// errno as user code sees it when it is set in one function and read in another
// (through __errno_location() on the thread that runs the read). Within one
// function, a compiler may keep errno's address across a call that switches
// fibers (glibc declares __errno_location() const): docs/design.md has the rule.
__attribute__((noinline)) void SetErrno(int value) { errno = value; }
__attribute__((noinline)) int GetErrno() { return errno; }

TEST_P(FiberLocalTest, ErrnoIsPerFiberAcrossSwitchesAndThreads) {
  constexpr int kFibers = 32;
  std::atomic<int> wrong{0};
  std::atomic<int> started_nonzero{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&wrong, &started_nonzero, i] {
      if (GetErrno() != 0) started_nonzero.fetch_add(1);
      for (int round = 0; round < 100; ++round) {
        SetErrno(1000 + i);
        this_fiber::Yield();
        if (GetErrno() != 1000 + i) wrong.fetch_add(1);
        SetErrno(2000 + i);
        if (round % 25 == 0) this_fiber::SleepFor(std::chrono::microseconds(20));
        if (GetErrno() != 2000 + i) wrong.fetch_add(1);
      }
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(wrong.load(), 0) << "errno leaked between fibers";
  EXPECT_EQ(started_nonzero.load(), 0) << "a fiber started with another's errno";
}

// The runtime's own thread-local state (which worker runs the caller) is re-read
// after every switch, at -O3 too: a fiber's id and its FiberLocal stay its own
// however often it moves between workers.
TEST_P(FiberLocalTest, RuntimeThreadLocalsAreReReadAfterEverySwitch) {
  FiberLocal<std::uint64_t> own_id;
  constexpr int kFibers = 32;
  std::atomic<int> wrong{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&] {
      const std::uint64_t id = this_fiber::GetId();
      *own_id = id;
      for (int round = 0; round < 200; ++round) {
        this_fiber::Yield();
        if (this_fiber::GetId() != id || *own_id != id) wrong.fetch_add(1);
      }
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(wrong.load(), 0);
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(FiberLocalTest);

}  // namespace
}  // namespace weft
