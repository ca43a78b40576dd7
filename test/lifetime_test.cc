// "Signal, then return": every object that lets a waiter return may be
// destroyed by that waiter the moment its wait returns, even while the party
// that signalled is still returning from its call. Each test runs thousands of
// rounds in which a waiter creates an object, hands it to a signaller, waits on
// it and destroys it at once; the signaller signals and goes on to the next
// round. Both sides are fibers or plain threads, placed on one CPU (a woken
// thread preempts its waker) or on two (the waker's tail runs while the waiter
// returns). A touch after the signal is a use after free, which AddressSanitizer
// and ThreadSanitizer report and a release build may silently survive (or leak
// on).
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/fiber_local.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_barrier.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_event.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_recursive_mutex.h"
#include "runtime/sync/fiber_semaphore.h"
#include "runtime/sync/fiber_seq_lock.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/this_fiber.h"
#include "runtime/timer/timer.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Side;

enum class Placement { kOneCpu, kTwoCpus };

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

void PinCallingThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

// Gives the other side a chance to run while polling: other fibers of the
// worker, and other threads of the CPU (a polling fiber would otherwise keep a
// plain thread pinned to the same CPU off it until its time slice ends).
void Relax() {
  if (this_fiber::GetId() != 0) this_fiber::Yield();
  std::this_thread::yield();
}

const int kRounds = static_cast<int>(testing::Scaled(5000, 2000));

// Parameters: the waiter's side, the signaller's side, the placement. With
// one CPU the runtime has one worker on it and plain threads are pinned there
// too; with two, each side has its own CPU (fibers in their own one-worker
// scheduling group, group-local so that they never move).
class LifetimeTest : public ::testing::TestWithParam<std::tuple<Side, Side, Placement>> {
 protected:
  enum class Role { kWaiter, kSignaller };

  void SetUp() override {
    const std::vector<int> cpus = AllowedCpus();
    ASSERT_FALSE(cpus.empty());
    RuntimeOptions options;
    if (placement() == Placement::kOneCpu) {
      options.concurrency_hint = 1;
      options.accessible_cpus = std::to_string(cpus[0]);
    } else {
      if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs";
      options.concurrency_hint = 2;
      options.scheduling_group_size = 1;
      options.disallow_cpu_migration = true;
      options.accessible_cpus = std::to_string(cpus[0]) + "," + std::to_string(cpus[1]);
    }
    StartRuntime(options);
    // Plain threads of a role go on the CPU of that role's worker.
    for (Role role : {Role::kWaiter, Role::kSignaller}) {
      std::atomic<int> cpu{-1};
      Fiber(Attributes(role), [&] { cpu = sched_getcpu(); }).Join();
      cpu_[static_cast<int>(role)] = cpu.load();
    }
  }
  void TearDown() override { TerminateRuntime(); }

  Side waiter() const { return std::get<0>(GetParam()); }
  Side signaller() const { return std::get<1>(GetParam()); }
  Placement placement() const { return std::get<2>(GetParam()); }

  FiberAttributes Attributes(Role role) const {
    FiberAttributes attributes;
    attributes.scheduling_group =
        placement() == Placement::kTwoCpus && role == Role::kSignaller ? 1 : 0;
    attributes.scheduling_group_local = true;
    return attributes;
  }

  // A fiber or a plain thread running `body` as `role`, placed as above.
  std::unique_ptr<testing::Actor> Start(Side side, Role role, std::function<void()> body) {
    if (side == Side::kFiber) {
      return std::make_unique<testing::Actor>(Fiber(Attributes(role), std::move(body)));
    }
    const int cpu = cpu_[static_cast<int>(role)];
    return std::make_unique<testing::Actor>(std::thread([cpu, body = std::move(body)] {
      PinCallingThread(cpu);
      body();
    }));
  }

  // Runs kRounds rounds: Scenario::WaitRound(publish) on the waiter's side
  // creates an object, passes it to `publish`, waits on it and destroys it;
  // Scenario::Signal(object) on the signaller's side signals it.
  template <class Scenario>
  void RunRounds() {
    testing::Watchdog watchdog(std::string("the rounds of ") + Scenario::kName);
    std::atomic<typename Scenario::Object*> slot{nullptr};
    auto signalling = Start(signaller(), Role::kSignaller, [&] {
      for (int round = 0; round != kRounds; ++round) {
        typename Scenario::Object* object;
        while ((object = slot.exchange(nullptr, std::memory_order_acquire)) == nullptr) {
          Relax();
        }
        Scenario::Signal(object);
      }
    });
    auto waiting = Start(waiter(), Role::kWaiter, [&] {
      for (int round = 0; round != kRounds; ++round) {
        Scenario::WaitRound([&](typename Scenario::Object* object) {
          slot.store(object, std::memory_order_release);
        });
      }
    });
    waiting->Join();
    signalling->Join();
  }

 private:
  int cpu_[2] = {-1, -1};
};

// Scenarios: Object is what the waiter hands over; WaitRound and Signal as
// described at RunRounds.

struct PromiseOnTheHeap {
  static constexpr const char* kName = "a promise on the heap";
  struct Object {
    Promise<int> promise;
    Future<int> future = promise.GetFuture();
  };
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* object = new Object;
    Future<int> future = std::move(object->future);
    publish(object);
    EXPECT_EQ(BlockingGet(std::move(future)), 42);
    delete object;
  }
  static void Signal(Object* object) { object->promise.SetValue(42); }
};

struct PromiseOnTheWaitersStack {
  static constexpr const char* kName = "a promise on the waiter's stack";
  using Object = Promise<std::string>;
  template <class Publish>
  static void WaitRound(Publish publish) {
    Promise<std::string> promise;
    Future<std::string> future = promise.GetFuture();
    publish(&promise);
    EXPECT_EQ(BlockingGet(std::move(future)), "value");
  }  // the promise goes as soon as BlockingGet returned
  static void Signal(Object* promise) { promise->SetValue("value"); }
};

// Many consumers share the value; the one waiting here destroys the promise
// as soon as its BlockingGet returns.
struct SharedFuturePromise {
  static constexpr const char* kName = "a promise behind a SharedFuture";
  using Object = Promise<int>;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* promise = new Promise<int>;
    SharedFuture<int> shared = promise->GetFuture().Share();
    SharedFuture<int> copy = shared;
    publish(promise);
    EXPECT_EQ(BlockingGet(copy), 3);
    delete promise;
    EXPECT_EQ(BlockingGet(shared), 3);
  }
  static void Signal(Object* promise) { promise->SetValue(3); }
};

struct LatchCountDown {
  static constexpr const char* kName = "FiberLatch";
  using Object = FiberLatch;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* latch = new FiberLatch(1);
    publish(latch);
    latch->Wait();
    delete latch;
  }
  static void Signal(Object* latch) { latch->CountDown(); }
};

struct EventSet {
  static constexpr const char* kName = "FiberEvent";
  using Object = FiberEvent;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* event = new FiberEvent;
    publish(event);
    event->Wait();
    delete event;
  }
  static void Signal(Object* event) { event->Set(); }
};

struct SemaphoreRelease {
  static constexpr const char* kName = "FiberSemaphore";
  using Object = FiberSemaphore;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* semaphore = new FiberSemaphore(0);
    publish(semaphore);
    semaphore->Acquire();
    delete semaphore;
  }
  static void Signal(Object* semaphore) { semaphore->Release(); }
};

struct BarrierArrival {
  static constexpr const char* kName = "FiberBarrier";
  using Object = FiberBarrier;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* barrier = new FiberBarrier(2);
    publish(barrier);
    barrier->ArriveAndWait();
    delete barrier;
  }
  static void Signal(Object* barrier) { barrier->ArriveAndWait(); }
};

struct ChannelPush {
  static constexpr const char* kName = "FiberChannel::Push";
  using Object = FiberChannel<std::unique_ptr<int>>;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* channel = new Object(1);
    publish(channel);
    auto value = channel->Pop();
    ASSERT_TRUE(value.has_value());
    EXPECT_EQ(**value, 7);
    delete channel;
  }
  static void Signal(Object* channel) {
    EXPECT_TRUE(channel->Push(std::make_unique<int>(7)));
  }
};

struct ChannelTimedPop {
  static constexpr const char* kName = "FiberChannel::PopFor";
  using Object = FiberChannel<int>;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* channel = new Object(1);
    publish(channel);
    auto got = channel->PopFor(std::chrono::hours(1));
    EXPECT_EQ(got.status, ChannelStatus::kOk);
    delete channel;
  }
  static void Signal(Object* channel) { EXPECT_TRUE(channel->Push(1)); }
};

struct ChannelClose {
  static constexpr const char* kName = "FiberChannel::Close";
  using Object = FiberChannel<int>;
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* channel = new Object(4);
    publish(channel);
    EXPECT_FALSE(channel->Pop().has_value());
    delete channel;
  }
  static void Signal(Object* channel) { channel->Close(); }
};

// The waiter is known to be waiting when the notification comes (it said so
// under the mutex, which wait() releases only once it is queued), so notifying
// after unlocking is legitimate, and the waiter may destroy the condition
// variable while notify_one() is still returning.
struct ConditionVariableNotify {
  static constexpr const char* kName = "FiberConditionVariable";
  struct Object {
    FiberMutex mutex;
    FiberConditionVariable cv;
    bool waiting = false;
    bool notified = false;
  };
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* object = new Object;
    publish(object);
    {
      std::unique_lock<FiberMutex> lock(object->mutex);
      object->waiting = true;
      object->cv.wait(lock, [&] { return object->notified; });
    }
    delete object;
  }
  static void Signal(Object* object) {
    for (;;) {
      std::unique_lock<FiberMutex> lock(object->mutex);
      if (object->waiting) {
        object->notified = true;
        break;
      }
      lock.unlock();
      Relax();
    }
    object->cv.notify_one();
  }
};

// The waiter blocks in lock() while the signaller holds the mutex; the
// signaller's unlock lets it in.
template <class Mutex>
struct MutexUnlock {
  static constexpr const char* kName = "a mutex";
  struct Object {
    Mutex mutex;
    std::atomic<bool> held{false};
  };
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* object = new Object;
    publish(object);
    while (!object->held.load(std::memory_order_acquire)) Relax();
    object->mutex.lock();
    object->mutex.unlock();
    delete object;
  }
  static void Signal(Object* object) {
    object->mutex.lock();
    object->held.store(true, std::memory_order_release);
    for (int i = 0; i != 3; ++i) Relax();  // let the waiter block, sometimes
    object->mutex.unlock();
  }
};

struct SharedMutexWriterUnlock {
  static constexpr const char* kName = "FiberSharedMutex";
  struct Object {
    FiberSharedMutex mutex;
    std::atomic<bool> held{false};
  };
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* object = new Object;
    publish(object);
    while (!object->held.load(std::memory_order_acquire)) Relax();
    object->mutex.lock_shared();
    object->mutex.unlock_shared();
    delete object;
  }
  static void Signal(Object* object) {
    object->mutex.lock();
    object->held.store(true, std::memory_order_release);
    for (int i = 0; i != 3; ++i) Relax();
    object->mutex.unlock();
  }
};

// A reader's read section succeeds once the writer's unlock() made the
// sequence even; the reader then destroys the lock.
struct SeqLockWriterUnlock {
  static constexpr const char* kName = "FiberSeqLock";
  struct Object {
    FiberSeqLock lock;
    std::atomic<int> value{0};
    std::atomic<bool> writing{false};
  };
  template <class Publish>
  static void WaitRound(Publish publish) {
    auto* object = new Object;
    publish(object);
    while (!object->writing.load(std::memory_order_acquire)) Relax();
    int value;
    std::uint64_t seq;
    do {
      seq = object->lock.ReadBegin();
      value = object->value.load(std::memory_order_relaxed);
    } while (object->lock.ReadRetry(seq));
    EXPECT_EQ(value, 1);
    delete object;
  }
  static void Signal(Object* object) {
    object->lock.lock();
    object->writing.store(true, std::memory_order_release);
    object->value.store(1, std::memory_order_relaxed);
    Relax();
    object->lock.unlock();
  }
};

TEST_P(LifetimeTest, PromiseOnTheHeapMayGoWhenBlockingGetReturns) {
  RunRounds<PromiseOnTheHeap>();
}
TEST_P(LifetimeTest, PromiseOnTheWaitersStackMayGoWhenBlockingGetReturns) {
  RunRounds<PromiseOnTheWaitersStack>();
}
TEST_P(LifetimeTest, PromiseOfASharedFutureMayGoWhenBlockingGetReturns) {
  RunRounds<SharedFuturePromise>();
}
TEST_P(LifetimeTest, LatchMayGoWhenWaitReturns) { RunRounds<LatchCountDown>(); }
TEST_P(LifetimeTest, EventMayGoWhenWaitReturns) { RunRounds<EventSet>(); }
TEST_P(LifetimeTest, SemaphoreMayGoWhenAcquireReturns) { RunRounds<SemaphoreRelease>(); }
TEST_P(LifetimeTest, BarrierMayGoWhenArriveAndWaitReturns) {
  RunRounds<BarrierArrival>();
}
TEST_P(LifetimeTest, ChannelMayGoWhenPopReturns) { RunRounds<ChannelPush>(); }
TEST_P(LifetimeTest, ChannelMayGoWhenPopForReturns) { RunRounds<ChannelTimedPop>(); }
TEST_P(LifetimeTest, ChannelMayGoWhenPopReturnsAfterClose) { RunRounds<ChannelClose>(); }
TEST_P(LifetimeTest, ConditionVariableMayGoWhenWaitReturns) {
  RunRounds<ConditionVariableNotify>();
}
TEST_P(LifetimeTest, MutexMayGoWhenLockReturns) { RunRounds<MutexUnlock<FiberMutex>>(); }
TEST_P(LifetimeTest, TimedMutexMayGoWhenLockReturns) {
  RunRounds<MutexUnlock<FiberTimedMutex>>();
}
TEST_P(LifetimeTest, RecursiveMutexMayGoWhenLockReturns) {
  RunRounds<MutexUnlock<FiberRecursiveMutex>>();
}
TEST_P(LifetimeTest, SharedMutexMayGoWhenLockSharedReturns) {
  RunRounds<SharedMutexWriterUnlock>();
}
TEST_P(LifetimeTest, SeqLockMayGoWhenAReadSucceeds) { RunRounds<SeqLockWriterUnlock>(); }

// The signaller of a timer is its callback's fiber, and of a join the joined
// fiber: these run with fiber signallers only.
class FiberSignallerLifetimeTest : public LifetimeTest {};

// Whatever a timer's callback captured is gone when KillTimer returns, and the
// callback no longer runs: the caller may free what it used.
TEST_P(FiberSignallerLifetimeTest, WhatATimerCallbackUsesMayGoWhenKillTimerReturns) {
  struct Used {
    FiberEvent fired;
    std::atomic<int> touches{0};
  };
  // Captured by the callback; its destructor touches `used` too.
  struct Capture {
    Used* used;
    explicit Capture(Used* u) : used(u) {}
    Capture(Capture&& other) noexcept : used(std::exchange(other.used, nullptr)) {}
    ~Capture() {
      if (used != nullptr) used->touches.fetch_add(1);
    }
  };
  auto waiting = Start(waiter(), Role::kWaiter, [&] {
    for (int round = 0; round != kRounds / 4; ++round) {
      auto* used = new Used;
      const TimerId id =
          SetTimer(std::chrono::steady_clock::now(), [capture = Capture(used)] {
            capture.used->fired.Set();
            capture.used->touches.fetch_add(1);  // after the signal
          });
      used->fired.Wait();
      KillTimer(id);
      EXPECT_EQ(used->touches.load(), 2)
          << "the callback or its capture outlived KillTimer";
      delete used;
    }
  });
  waiting->Join();
}

// A joinable fiber's callable and FiberLocals are destroyed before Join()
// returns.
TEST_P(FiberSignallerLifetimeTest, WhatAJoinedFiberUsesMayGoWhenJoinReturns) {
  struct Used {
    std::atomic<int> touches{0};
  };
  struct Touch {
    Used* used = nullptr;
    ~Touch() {
      if (used != nullptr) used->touches.fetch_add(1);
    }
  };
  static FiberLocal<Touch> local_touch;
  auto waiting = Start(waiter(), Role::kWaiter, [&] {
    for (int round = 0; round != kRounds / 4; ++round) {
      auto* used = new Used;
      auto capture = std::make_unique<Touch>();
      capture->used = used;
      Fiber fiber(Attributes(Role::kSignaller), [used, capture = std::move(capture)] {
        local_touch->used = used;
        used->touches.fetch_add(1);
      });
      fiber.Join();
      EXPECT_EQ(used->touches.load(), 3)
          << "the fiber's callable or FiberLocal outlived Join";
      delete used;
    }
  });
  waiting->Join();
}

std::string LifetimeName(
    const ::testing::TestParamInfo<std::tuple<Side, Side, Placement>>& info) {
  return std::string(testing::SideName(std::get<0>(info.param))) + "Waits" +
         testing::SideName(std::get<1>(info.param)) + "Signals" +
         (std::get<2>(info.param) == Placement::kOneCpu ? "OnOneCpu" : "OnTwoCpus");
}

INSTANTIATE_TEST_SUITE_P(
    Sides, LifetimeTest,
    ::testing::Combine(::testing::Values(Side::kFiber, Side::kThread),
                       ::testing::Values(Side::kFiber, Side::kThread),
                       ::testing::Values(Placement::kOneCpu, Placement::kTwoCpus)),
    LifetimeName);

INSTANTIATE_TEST_SUITE_P(
    Sides, FiberSignallerLifetimeTest,
    ::testing::Combine(::testing::Values(Side::kFiber, Side::kThread),
                       ::testing::Values(Side::kFiber),
                       ::testing::Values(Placement::kOneCpu, Placement::kTwoCpus)),
    LifetimeName);

}  // namespace
}  // namespace weft
