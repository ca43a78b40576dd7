// gdb_target: the program debug/check_gdb.sh debugs to test debug/weft.py.
//
// It starts a runtime of two scheduling groups of one worker each and leaves
// fibers in known places. In group 0: one parked on a FiberMutex that main
// holds, one in this_fiber::SleepFor, one on a FiberConditionVariable, one on a
// FiberLatch and one in Fiber::Join of that latch waiter. In group 1: one running
// a busy loop, and one that cannot start while it runs (ready). Besides, a plain
// thread waits in a function inlined into another, for the checks to run the
// commands from a thread whose innermost frames are two. It waits, by
// polling the fibers' states through weft_debug_stacks, until each is where it
// should be, copies their ids into `weft_gdb_target_ids` and calls
// weft_gdb_target_parked(), where the debugger may break first. Then it
// hibernates every parked fiber (hibernator.h: the runtime runs with
// hibernation on, with a threshold of an hour so that passes happen only when
// main asks), waits until each is hibernated, and calls weft_gdb_target_ready(),
// where the debugger breaks. Where the kernel has no userfaultfd for it
// (StartRuntime throws), or with --no_hibernation, it runs without hibernation
// and nothing is hibernated; `weft_gdb_target_hibernation` says which. Then it
// releases everything and stops the runtime; it exits 0 only if every fiber
// finished.
//
// Usage: weft_gdb_target [--attach | --abort] [--extra_parked=N] [--no_hibernation]
//   --abort           abort() in weft_gdb_target_ready()'s place, for a core
//                     written by the kernel
//   --attach          after weft_gdb_target_ready(), print "ready <pid>" and wait
//                     until a debugger sets weft_gdb_target_release to 1, keeping
//                     weft_gdb_target_settled up to date meanwhile
//   --extra_parked=N  also park N fibers (16 KiB stacks) on another latch, to
//                     try the gdb commands on many fibers
//   --no_hibernation  do not turn hibernation on, as where it is not available
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/hibernator.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/this_fiber.h"

// Defined in runtime/detail/stack_pool.cc.
extern "C" weft::detail::StackRecord weft_debug_stacks;

extern "C" {
// The ids of the fibers, for the debugger; written before weft_gdb_target_ready().
struct WeftGdbTargetIds {
  std::uint64_t mutex_waiter;
  std::uint64_t sleeper;
  std::uint64_t condition_waiter;
  std::uint64_t latch_waiter;
  std::uint64_t joiner;
  std::uint64_t busy;
  std::uint64_t not_started;
};
WeftGdbTargetIds weft_gdb_target_ids;
// Set to 1 by the debugger in --attach mode to let the program finish.
volatile int weft_gdb_target_release = 0;
// In --attach mode, 1 while the last check found every fiber in its state (and
// the sleeper far from waking up): a debugger that attaches and reads 1 sees the
// fibers where they should be.
volatile int weft_gdb_target_settled = 0;
// 1 when the runtime hibernates fibers: at weft_gdb_target_ready() (and while
// weft_gdb_target_settled is 1) every parked fiber is hibernated.
volatile int weft_gdb_target_hibernation = 0;

// Where the debugger may break first: every fiber is in its expected state, and
// none is hibernated yet.
__attribute__((noinline)) void weft_gdb_target_parked() { asm volatile("" ::: "memory"); }

// Where the debugger breaks: every fiber is in its expected state, and every
// parked one hibernated when weft_gdb_target_hibernation is 1.
__attribute__((noinline)) void weft_gdb_target_ready() { asm volatile("" ::: "memory"); }
}

namespace gdb_target {
namespace {

// The fiber bodies must keep their own frames and names: no inlining, and with
// GCC no cloning either (a clone would be named "...constprop.0").
#if defined(__clang__)
#define GDB_TARGET_FRAME __attribute__((noinline))
#else
#define GDB_TARGET_FRAME __attribute__((noipa))
#endif

using Clock = std::chrono::steady_clock;

// Each sleep is long enough that it cannot end between the moment main sees
// the sleeper parked and the moment the debugger stops the process, and short
// enough that the release does not keep the program waiting long.
constexpr std::chrono::seconds kSleep{4};
constexpr std::chrono::seconds kSleepMargin{1};
// How long main waits for the fibers to reach their states before giving up.
constexpr std::chrono::seconds kSetupTimeout{120};
// How long --attach mode waits for a debugger to release it.
constexpr std::chrono::seconds kAttachTimeout{600};

weft::FiberMutex held_mutex;  // locked by main until the release
weft::FiberMutex condition_mutex;
weft::FiberConditionVariable condition;
bool condition_released = false;  // guarded by condition_mutex
weft::FiberLatch latch(1);
weft::FiberLatch extra_latch(1);
std::atomic<bool> released{false};
std::atomic<Clock::rep> sleep_deadline{0};
std::atomic<int> finished{0};

std::atomic<std::uint64_t> mutex_waiter_id{0};
std::atomic<std::uint64_t> sleeper_id{0};
std::atomic<std::uint64_t> condition_waiter_id{0};
std::atomic<std::uint64_t> latch_waiter_id{0};
std::atomic<std::uint64_t> joiner_id{0};
std::atomic<std::uint64_t> busy_id{0};
std::atomic<int> extra_started{0};
std::atomic<int> inlined_waiter_started{0};
std::atomic<int> inlined_waiter_released{0};

}  // namespace

// The fiber bodies have external linkage so that their names read plainly in
// gdb ("gdb_target::ParkedOnFiberMutex").
GDB_TARGET_FRAME void ParkedOnFiberMutex() {
  mutex_waiter_id.store(weft::this_fiber::GetId());
  held_mutex.lock();
  held_mutex.unlock();
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void ParkedInSleepFor() {
  sleeper_id.store(weft::this_fiber::GetId());
  while (!released.load()) {
    sleep_deadline.store((Clock::now() + kSleep).time_since_epoch().count());
    weft::this_fiber::SleepFor(kSleep);
  }
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void ParkedOnConditionVariable() {
  condition_waiter_id.store(weft::this_fiber::GetId());
  std::unique_lock<weft::FiberMutex> lock(condition_mutex);
  condition.wait(lock, [] { return condition_released; });
  lock.unlock();
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void ParkedOnFiberLatch() {
  latch_waiter_id.store(weft::this_fiber::GetId());
  latch.Wait();
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void ParkedInJoin() {
  joiner_id.store(weft::this_fiber::GetId());
  // Local to group 0 like its parent: a worker of group 1 idle before the busy
  // fiber starts would otherwise steal it, and the checks expect it in group 0.
  weft::FiberAttributes local;
  local.scheduling_group = 0;
  local.scheduling_group_local = true;
  weft::Fiber child(local, [] { ParkedOnFiberLatch(); });
  child.Join();
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void RunningBusyLoop() {
  busy_id.store(weft::this_fiber::GetId());
  while (!released.load(std::memory_order_relaxed)) {
    asm volatile("pause" ::: "memory");
  }
  finished.fetch_add(1);
}

GDB_TARGET_FRAME void NotStartedYet() { finished.fetch_add(1); }

// Waits until `released` is 1. Always inlined, and it makes the system call
// itself rather than through a libc function, so that the thread is stopped in
// its code: gdb shows it as frame #0, above the function it is inlined into.
__attribute__((always_inline)) inline void WaitInInlinedFrame(std::atomic<int>* started,
                                                              std::atomic<int>* released) {
  started->store(1);
  while (released->load() == 0) {
#if defined(__x86_64__)
    register void* no_timeout asm("r10") = nullptr;
    long result;
    asm volatile("syscall"
                 : "=a"(result)
                 : "0"(static_cast<long>(SYS_futex)), "D"(released), "S"(FUTEX_WAIT_PRIVATE),
                   "d"(0), "r"(no_timeout)
                 : "rcx", "r11", "memory");
    (void)result;
#else
    syscall(SYS_futex, released, FUTEX_WAIT_PRIVATE, 0, nullptr);
#endif
  }
}

GDB_TARGET_FRAME void InlinedWaiterThread() {
  WaitInInlinedFrame(&inlined_waiter_started, &inlined_waiter_released);
}

GDB_TARGET_FRAME void ParkedExtra() {
  extra_started.fetch_add(1);
  extra_latch.Wait();
}

namespace {

constexpr int kFibers = 7;  // the fibers above, not counting the extra ones

std::uint8_t StateOf(const weft::detail::FiberEntity* fiber) {
  return __atomic_load_n(reinterpret_cast<const std::uint8_t*>(&fiber->state),
                         __ATOMIC_ACQUIRE);
}

bool Suspended(const weft::detail::FiberEntity* fiber) {
  return StateOf(fiber) == static_cast<std::uint8_t>(weft::detail::FiberState::kParked) &&
         __atomic_load_n(&fiber->context.fctx, __ATOMIC_ACQUIRE) != nullptr;
}

// The parked fibers' control blocks, by address, with their ids: once every
// fiber has been seen parked, a hibernated one is known by its record alone.
// Reading its control block would touch its stack, and wake it.
using ParkedFibers = std::map<const weft::detail::FiberEntity*, std::uint64_t>;

// Walks weft_debug_stacks as the debugger does. Called only once every fiber has
// been created, so no stack is mapped or unmapped while it walks. Sets
// ids->not_started to the one fiber that is ready, and fills *parked with the
// parked fibers. With `hibernated`, every fiber in *parked must be hibernated
// (and is not read); otherwise none is hibernated yet.
// Returns an empty string when every fiber is where it should be, otherwise
// what is not yet.
std::string CheckStates(WeftGdbTargetIds* ids_out, ParkedFibers* parked, bool hibernated) {
  WeftGdbTargetIds& ids = *ids_out;
  const std::uint64_t suspended_ids[] = {
      ids.mutex_waiter, ids.sleeper, ids.condition_waiter, ids.latch_waiter, ids.joiner};
  int suspended_found = 0;
  int ready = 0;
  bool busy_running = false;
  std::string problems;
  if (!hibernated) parked->clear();
  for (weft::detail::StackRecord* record = weft_debug_stacks.next;
       record != &weft_debug_stacks; record = record->next) {
    const weft::detail::FiberEntity* fiber = record->fiber.load(std::memory_order_acquire);
    if (fiber == nullptr) continue;
    const auto sleep = record->sleep.load(std::memory_order_acquire);
    const auto known = parked->find(fiber);
    if (sleep != weft::detail::StackSleep::kAwake) {
      // Hibernated (or being hibernated, which only a pass main asked for
      // does, and none runs now): parked, in any case.
      if (known == parked->end() || sleep != weft::detail::StackSleep::kHibernated) {
        problems += " a fiber hibernated unexpectedly;";
        continue;
      }
      for (std::uint64_t suspended_id : suspended_ids) {
        if (known->second == suspended_id) ++suspended_found;
      }
      continue;
    }
    if (hibernated && known != parked->end()) {
      problems += " fiber " + std::to_string(known->second) + " not hibernated;";
      continue;
    }
    const std::uint64_t id = fiber->id;
    if (id == ids.busy) {
      busy_running =
          StateOf(fiber) == static_cast<std::uint8_t>(weft::detail::FiberState::kRunning);
      if (!busy_running)
        problems += " busy fiber " + std::to_string(id) + " not running;";
      continue;
    }
    if (StateOf(fiber) == static_cast<std::uint8_t>(weft::detail::FiberState::kReady) &&
        __atomic_load_n(&fiber->context.fctx, __ATOMIC_ACQUIRE) != nullptr) {
      ++ready;
      ids.not_started = id;
      continue;
    }
    if (!Suspended(fiber)) {
      problems += " fiber " + std::to_string(id) + " in state " +
                  std::to_string(StateOf(fiber)) + ", not parked yet;";
      continue;
    }
    if (!hibernated) (*parked)[fiber] = id;
    for (std::uint64_t suspended_id : suspended_ids) {
      if (id == suspended_id) ++suspended_found;
    }
  }
  if (suspended_found != 5) problems += " not every named fiber is in the stack list;";
  if (hibernated && problems.empty()) {
    // The runtime's own count agrees.
    const auto stats = weft::GetRuntimeStats().hibernation;
    if (stats.hibernated_now < parked->size()) {
      problems += " hibernated_now is " + std::to_string(stats.hibernated_now) + ", not " +
                  std::to_string(parked->size()) + ";";
    }
  }
  if (!busy_running) problems += " no running busy fiber;";
  if (ready != 1) problems += " " + std::to_string(ready) + " ready fibers, not 1;";
  const Clock::time_point sleeper_wakes{Clock::duration{sleep_deadline.load()}};
  if (Clock::now() + kSleepMargin > sleeper_wakes) {
    problems += " the sleeper wakes up soon;";
  }
  return problems;
}

// The extra fibers go into the checks only through "every fiber is parked".
bool AllStarted(int extra) {
  return mutex_waiter_id.load() != 0 && sleeper_id.load() != 0 &&
         condition_waiter_id.load() != 0 && latch_waiter_id.load() != 0 &&
         joiner_id.load() != 0 && busy_id.load() != 0 && extra_started.load() == extra &&
         inlined_waiter_started.load() == 1;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "weft_gdb_target: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace
}  // namespace gdb_target

int main(int argc, char** argv) {
  using namespace gdb_target;
  // The target hibernates its fibers itself, once they are where the checks
  // expect them; CI's hibernation phase would otherwise hibernate them early.
  unsetenv("WEFT_HIBERNATE_AFTER_MS");
  bool attach = false;
  bool abort = false;
  bool hibernation = true;
  int extra = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--attach") == 0) {
      attach = true;
    } else if (std::strcmp(argv[i], "--abort") == 0) {
      abort = true;
    } else if (std::strcmp(argv[i], "--no_hibernation") == 0) {
      hibernation = false;
    } else if (std::strncmp(argv[i], "--extra_parked=", 15) == 0) {
      extra = std::atoi(argv[i] + 15);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--attach | --abort] [--extra_parked=N] [--no_hibernation]\n",
                   argv[0]);
      return 2;
    }
  }

  weft::RuntimeOptions options;
  options.concurrency_hint = 2;
  options.scheduling_group_size = 1;
  // An hour: no fiber is parked that long here, so the hibernator's own passes
  // hibernate nothing and only main's requests do.
  options.hibernate_parked_fibers_after_ms = hibernation ? 3'600'000 : 0;
  std::optional<weft::Runtime> runtime;
  try {
    runtime.emplace(options);
  } catch (const std::system_error& e) {
    if (options.hibernate_parked_fibers_after_ms == 0) throw;
    std::fprintf(stderr, "weft_gdb_target: running without hibernation: %s\n", e.what());
    options.hibernate_parked_fibers_after_ms = 0;
    runtime.emplace(options);
  }
  weft_gdb_target_hibernation = options.hibernate_parked_fibers_after_ms != 0 ? 1 : 0;
  // Local: a worker of the other group never steals them.
  weft::FiberAttributes group0;
  group0.scheduling_group = 0;
  group0.scheduling_group_local = true;
  weft::FiberAttributes group1 = group0;
  group1.scheduling_group = 1;

  held_mutex.lock();
  weft::Fiber mutex_waiter(group0, [] { ParkedOnFiberMutex(); });
  weft::Fiber sleeper(group0, [] { ParkedInSleepFor(); });
  weft::Fiber condition_waiter(group0, [] { ParkedOnConditionVariable(); });
  weft::Fiber joiner(group0, [] { ParkedInJoin(); });
  weft::Fiber busy(group1, [] { RunningBusyLoop(); });
  std::thread inlined_waiter(InlinedWaiterThread);
  weft::FiberAttributes small_stack = group0;
  small_stack.stack_size = 16 * 1024;
  for (int i = 0; i < extra; ++i) {
    if (!weft::StartFiberDetached(small_stack, [] { ParkedExtra(); })) {
      Fail("could not start extra fiber " + std::to_string(i));
    }
  }

  // Poll the states themselves; the deadline only turns a hang into a message.
  const auto give_up = Clock::now() + kSetupTimeout;
  while (!AllStarted(extra)) {
    if (Clock::now() > give_up) Fail("the fibers did not all start");
    std::this_thread::yield();
  }
  // The busy fiber occupies group 1's only worker now.
  weft::Fiber not_started(group1, [] { NotStartedYet(); });
  WeftGdbTargetIds ids{mutex_waiter_id.load(),
                       sleeper_id.load(),
                       condition_waiter_id.load(),
                       latch_waiter_id.load(),
                       joiner_id.load(),
                       busy_id.load(),
                       0};
  ParkedFibers parked;
  std::string problems;
  while (!(problems = CheckStates(&ids, &parked, false)).empty()) {
    if (Clock::now() > give_up) Fail("the fibers did not reach their states:" + problems);
    std::this_thread::yield();
  }
  weft_gdb_target_ids = ids;
  weft_gdb_target_parked();

  // Hibernates whatever is parked and not hibernated yet (the sleeper, woken
  // and parked again, or the fibers a debugger woke), and checks that every
  // fiber is in its state.
  const bool hibernating = weft_gdb_target_hibernation == 1;
  auto settle = [&] {
    if (hibernating) weft::detail::HibernateParkedFibers(std::chrono::milliseconds(0));
    return CheckStates(&ids, &parked, hibernating);
  };
  if (hibernating) {
    // A new deadline: a debugger may have kept the program stopped at
    // weft_gdb_target_parked() for long.
    const auto hibernate_give_up = Clock::now() + kSetupTimeout;
    while (!(problems = settle()).empty()) {
      if (Clock::now() > hibernate_give_up) {
        Fail("the fibers did not all hibernate:" + problems);
      }
      std::this_thread::yield();
    }
  }
  if (abort) std::abort();
  weft_gdb_target_ready();

  if (attach) {
    std::printf("ready %d\n", static_cast<int>(getpid()));
    std::fflush(stdout);
    const auto attach_deadline = Clock::now() + kAttachTimeout;
    while (weft_gdb_target_release == 0) {
      if (Clock::now() > attach_deadline) Fail("no debugger released the program");
      weft_gdb_target_settled = settle().empty() ? 1 : 0;
      std::this_thread::yield();
    }
  }

  released.store(true);
  held_mutex.unlock();
  {
    std::lock_guard<weft::FiberMutex> lock(condition_mutex);
    condition_released = true;
  }
  condition.notify_all();
  latch.CountDown();
  extra_latch.CountDown();
  inlined_waiter_released.store(1);
  syscall(SYS_futex, &inlined_waiter_released, FUTEX_WAKE_PRIVATE, 1, nullptr);
  inlined_waiter.join();
  mutex_waiter.Join();
  sleeper.Join();
  condition_waiter.Join();
  joiner.Join();
  busy.Join();
  not_started.Join();
  if (finished.load() != kFibers) {
    Fail(std::to_string(finished.load()) + " of " + std::to_string(kFibers) +
         " fibers finished");
  }
  std::printf("weft_gdb_target: done\n");
  return 0;
}
