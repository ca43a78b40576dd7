#include "runtime/scheduling_group/fiber_worker.h"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/detail/futex.h"
#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/scheduling_group/policy/weft/weft_policy.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/stack_overflow.h"

namespace weft::detail {
namespace {

// How long a worker sleeps before it looks for work once more. A policy may
// place a fiber on a running worker's local queue or requeue a yielder and
// wake sleepers without a fence (weft's does), so in a window of a few
// instructions a worker falling asleep and the placement can miss each other;
// the second look (SchedulingPolicy::SecondLook) bounds how long such a fiber
// can wait when its worker's current fiber does not block. One extra wake-up
// per sleep, none while asleep.
// Longer than the kernel's tick (4 ms at HZ=250): a futex or epoll wait whose
// timeout falls before the next tick is slow to wake from on a virtual machine
// (measured here: 9 µs from FUTEX_WAKE to running with a 1 or 2 ms timeout,
// 1.8 µs with 4 ms and more, or none), and every wake-up of a worker that
// slept less than the timeout paid for it.
constexpr std::chrono::milliseconds kSecondLook{10};
// How often a running worker looks at the group's poller when no worker
// sleeps in it: every that many switches that may poll.
constexpr std::uint32_t kPollInterval = 64;
// How often a running worker looks for due deadlines: every that many picks
// (only a couple of loads while the group holds no deadline, a clock read
// otherwise).
constexpr std::uint32_t kTimerInterval = 8;
// Fibers one poll of the group's descriptors readies at most before the rest
// are readied one by one.
constexpr std::size_t kPollBatch = 64;

thread_local FiberWorker* current_worker = nullptr;

std::atomic<std::uint64_t> chaos_fallbacks{0};

struct SwitchRecord {
  FiberWorker* worker;  // the worker the receiver now runs on
  FiberEntity* from;    // null when the scheduler context switched
  AfterSwitch action;
  Spinlock* lock;
};

// What a fiber that switches away with `action` is doing until it runs again.
// A parking fiber stays kRunning until its switch is done (CompleteSwitch).
constexpr FiberState StateAfter(AfterSwitch action) {
  switch (action) {
    case AfterSwitch::kRequeue:
      return FiberState::kReady;
    case AfterSwitch::kReleaseExited:
      return FiberState::kExited;
    case AfterSwitch::kNothing:
    case AfterSwitch::kUnlock:
      break;
  }
  return FiberState::kRunning;
}

}  // namespace

__attribute__((noinline)) FiberWorker* CurrentWorker() {
  // The empty asm keeps the compiler from treating this as a pure function
  // whose result could be reused across a fiber switch.
  asm volatile("" ::: "memory");
  return current_worker;
}

// Completes a switch on the receiving side: stores the switcher's context and
// applies its AfterSwitch. Returns the worker the receiver now runs on. Always
// inlined: it runs on every switch, and a call there is measurable.
//
// Not analysed: kUnlock releases a lock that the fiber which switched away
// acquired (WaitQueue::Park's lock), on its behalf.
__attribute__((always_inline)) inline FiberWorker* CompleteSwitch(SwitchArrival arrival)
    WEFT_NO_THREAD_SAFETY_ANALYSIS {
  // Copy everything first: after a requeue or unlock, another worker may resume
  // the switcher and overwrite the record on its stack.
  const SwitchRecord record = *static_cast<const SwitchRecord*>(arrival.data);
  switch (record.action) {
    case AfterSwitch::kNothing:
      break;
    case AfterSwitch::kRequeue:
      record.worker->Requeue(record.from);
      break;
    case AfterSwitch::kUnlock:
      // Its registers are saved and no waker can reach it before the unlock:
      // from here until a waker readies it, it may be hibernated.
      record.from->parks.store(record.from->parks.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
      record.from->state.store(FiberState::kParked, std::memory_order_release);
      record.lock->unlock();
      break;
    case AfterSwitch::kReleaseExited:
      DestroyContext(&record.from->context);
      DropFiberReference(record.from);
      break;
  }
  return record.worker;
}

FiberWorker::FiberWorker(SchedulingGroup* group, std::size_t index, std::vector<int> cpus)
    : group_(group), index_(index), cpus_(std::move(cpus)) {}

// The ring goes after the group's poller (destroyed first, see the members of
// SchedulingGroup), with no request in flight (file_ring.h).
FiberWorker::~FiberWorker() = default;

FileRing* FiberWorker::FileRingForCurrentFiber() {
  if (WEFT_LIKELY(own_ring_ != nullptr) || ring_refused_) return own_ring_.get();
  std::string why;
  own_ring_ = FileRing::Create(FileRingEntries(), group_->poller(), &why);
  if (own_ring_ == nullptr) {
    ring_refused_ = true;
    ReportRingCreationFailure(why);
    return nullptr;
  }
  file_ring_.store(own_ring_.get(), std::memory_order_release);
  return own_ring_.get();
}

void FiberWorker::Start() {
  policy_ = &group_->policy();
  weft_policy_ = dynamic_cast<WeftPolicy*>(policy_);
  chaos_ = group_->chaos_migration() && group_->worker_count() > 1;
  thread_ = std::thread([this] { Run(); });
}

void FiberWorker::Join() {
  if (thread_.joinable()) thread_.join();
}

void FiberWorker::Run() {
  if (!cpus_.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus_) CPU_SET(cpu, &set);
    // Best effort: a CPU taken away after start-up must not kill the worker.
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  char name[16];
  std::snprintf(name, sizeof(name), "weft-g%zu-w%zu", group_->index() % 1000,
                index_ % 100);
  pthread_setname_np(pthread_self(), name);

  // Where the SIGSEGV handler runs when a fiber overflows its stack.
  AlternateSignalStack signal_stack;
  errno_location_ = &errno;
  current_worker = this;
  AdoptThreadContext(&scheduler_context_);
  while (FiberEntity* fiber = policy_->WaitForWork(this)) {
    current_ = fiber;
    fiber->state.store(FiberState::kRunning, std::memory_order_relaxed);
    fiber->last_worker = this;
    stats_.switches.Add();
    SwitchRecord record{this, nullptr, AfterSwitch::kNothing, nullptr};
    CompleteSwitch(SwitchContext(&scheduler_context_, &fiber->context, &record));
  }
  current_worker = nullptr;
}

__attribute__((always_inline)) inline FiberEntity* FiberWorker::PickNext(bool may_poll) {
  if (WEFT_UNLIKELY(--picks_until_poll_ == 0)) {
    picks_until_poll_ = kPollInterval;
    // With every worker busy no one sleeps in the poller: look between fibers,
    // at the first switch that holds no wait-queue lock from here on.
    poll_due_ = true;
  }
  if (WEFT_UNLIKELY(poll_due_) && may_poll) {
    poll_due_ = false;
    if (FiberEntity* fiber = PollWithoutWaiting()) return fiber;
  }
  // Completions of this worker's file requests: two loads when there is a ring.
  if (WEFT_UNLIKELY(own_ring_ != nullptr) && may_poll && own_ring_->HasCompletions()) {
    if (FiberEntity* fiber = ReapOwnRing()) return fiber;
  }
  if (may_poll && WEFT_UNLIKELY(--picks_until_timers_ == 0)) {
    picks_until_timers_ = kTimerInterval;
    // The fibers woken go through ReadyLocal, ahead of the queue: a request
    // that was waiting finishes before new ones start.
    FireDueTimers();
  }
  if (WEFT_LIKELY(weft_policy_ != nullptr)) return weft_policy_->PickNextFast(this);
  return policy_->PickNext(this);
}

FiberEntity* FiberWorker::ChaosTake(FiberEntity* fiber) {
  if (fiber->last_worker == this) {
    const auto now = std::chrono::steady_clock::now();
    if (fiber->chaos_passed_back_since == std::chrono::steady_clock::time_point{}) {
      fiber->chaos_passed_back_since = now;
    }
    if (now - fiber->chaos_passed_back_since < kChaosPatience) {
      policy_->PushAvoiding(fiber, index_);
      chaos_passed_back_ = true;
      return nullptr;
    }
    chaos_fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  fiber->chaos_passed_back_since = {};
  return fiber;
}

std::uint64_t ChaosFallbacks() { return chaos_fallbacks.load(std::memory_order_relaxed); }

// Always inlined into its callers, for the reason given at SwitchContext.
__attribute__((always_inline)) inline void FiberWorker::SwitchFromFiber(
    FiberEntity* next, AfterSwitch action, Spinlock* lock) {
  // Saved on this fiber's stack, restored through the errno of the worker that
  // resumes it (the fiber may move threads; glibc's __errno_location() is
  // declared const, so `errno` itself could be the old thread's after the
  // switch).
  const int saved_errno = *errno_location_;
  FiberEntity* self = current_;
  self->state.store(StateAfter(action), std::memory_order_relaxed);
  SwitchRecord record{this, self, action, lock};
  MachineContext* target = &scheduler_context_;
  current_ = next;
  if (next != nullptr) {
    target = &next->context;
    next->state.store(FiberState::kRunning, std::memory_order_relaxed);
    next->last_worker = this;
    stats_.switches.Add();
  }
  FiberWorker* resumed_on = CompleteSwitch(SwitchContext(
      &self->context, target, &record, action == AfterSwitch::kReleaseExited));
  *resumed_on->errno_location_ = saved_errno;
}

void FiberWorker::SwitchAway(AfterSwitch action, Spinlock* lock) {
  // A fiber that parks holds its wait-queue lock until the switch is done:
  // the poll, which takes descriptors' locks, waits for a switch without one.
  SwitchFromFiber(PickNext(/*may_poll=*/lock == nullptr), action, lock);
}

void FiberWorker::YieldCurrent() {
  FiberEntity* next = PickNext(/*may_poll=*/true);
  // In chaos mode the caller goes through the queue even when nothing else is
  // ready (switching to the scheduler context, which requeues it), so that
  // another worker resumes it.
  if (next == nullptr && !chaos_) return;
  SwitchFromFiber(next, AfterSwitch::kRequeue, nullptr);
}

void FiberWorker::DispatchTo(FiberEntity* fiber) {
  SwitchFromFiber(fiber, AfterSwitch::kRequeue, nullptr);
}

void FiberWorker::ReadyLocal(FiberEntity* fiber) {
  if (WEFT_LIKELY(weft_policy_ != nullptr)) {
    weft_policy_->ReadyLocalFast(this, fiber);
  } else {
    policy_->ReadyLocal(this, fiber);
  }
}

void FiberWorker::Requeue(FiberEntity* fiber) {
  if (WEFT_LIKELY(weft_policy_ != nullptr)) {
    weft_policy_->RequeueFast(fiber);
  } else {
    policy_->Requeue(this, fiber);
  }
}

FiberEntity* FiberWorker::Block(std::uint32_t generation) {
  // Completions on this worker's file ring are ours to take before we sleep:
  // its eventfd wakes a worker sleeping in the poller, but not a futex sleeper.
  if (FiberEntity* fiber = ReapOwnRing()) return fiber;
  stats_.sleeps.Add();
  // No one looks at the deadlines once the last of us sleeps: the timer
  // thread must then sleep until the earliest exactly.
  if (policy_->AllWorkersAsleep()) group_->timer_worker().WorkersWentToSleep();
  FiberEntity* fiber = nullptr;
  IoPoller& poller = group_->poller();
  if (poller.HasRegistrations() && !chaos_passed_back_ && poller.TryTakeSleeperToken()) {
    fiber = BlockInPoller(generation);
    poller.ReturnSleeperToken();
    if (fiber != nullptr) return fiber;
  } else if (WEFT_UNLIKELY(std::exchange(chaos_passed_back_, false))) {
    // Back after kChaosPatience at the latest, to take a fiber we passed back
    // if no other worker has.
    FutexWaitFor(&wake_generation_, generation,
                 std::chrono::nanoseconds(kChaosPatience).count());
  } else {
    FutexWaitFor(&wake_generation_, generation,
                 std::chrono::nanoseconds(kSecondLook).count());
    if (wake_generation_.load(std::memory_order_acquire) == generation) {
      // Not woken: the second look (see kSecondLook).
      if ((fiber = policy_->SecondLook(this)) != nullptr) return fiber;
      while (wake_generation_.load(std::memory_order_acquire) == generation) {
        FutexWait(&wake_generation_, generation);
      }
    }
  }
  if (wake_generation_.load(std::memory_order_acquire) != generation) {
    stats_.wakeups.Add();
  }
  return nullptr;
}

FiberEntity* FiberWorker::BlockInPoller(std::uint32_t generation) {
  IoPoller& poller = group_->poller();
  FiberEntity* batch[kPollBatch];
  std::size_t n = 0;
  // Pairs with Wake(): either it sees in_poller_ and interrupts the poll, or
  // we see its new generation and do not wait.
  in_poller_.store(true, std::memory_order_seq_cst);
  int timeout_ms = static_cast<int>(kSecondLook.count());
  while (n == 0 && wake_generation_.load(std::memory_order_seq_cst) == generation) {
    n = poller.Poll(timeout_ms, group_, batch, kPollBatch);
    if (n == 0 && timeout_ms >= 0 &&
        wake_generation_.load(std::memory_order_acquire) == generation) {
      // The second look, as in the futex sleep (see kSecondLook).
      timeout_ms = -1;
      if (FiberEntity* fiber = policy_->SecondLook(this)) {
        in_poller_.store(false, std::memory_order_seq_cst);
        return fiber;
      }
    }
  }
  in_poller_.store(false, std::memory_order_seq_cst);
  if (n == 0) return nullptr;
  if (n > 1) policy_->PushBatch(batch + 1, n - 1);
  return batch[0];
}

std::size_t FiberWorker::FireDueTimers() {
  TimerWorker& timers = group_->timer_worker();
  if (!timers.MayHaveDeadlines()) return 0;
  return timers.FireDue(std::chrono::steady_clock::now());
}

FiberEntity* FiberWorker::ReapOwnRing() {
  if (own_ring_ == nullptr || !own_ring_->HasCompletions()) return nullptr;
  FiberEntity* batch[kPollBatch];
  const std::size_t n = own_ring_->Reap(group_, batch, kPollBatch);
  if (n == 0) return nullptr;
  if (n > 1) group_->PushBatch(batch + 1, n - 1);
  return batch[0];
}

FiberEntity* FiberWorker::PollWithoutWaiting() {
  if (FiberEntity* fiber = ReapOwnRing()) return fiber;
  IoPoller& poller = group_->poller();
  // A worker sleeping in the poller is woken by the kernel for every event.
  if (!poller.HasRegistrations() || poller.HasSleeper()) return nullptr;
  FiberEntity* batch[kPollBatch];
  const std::size_t n = poller.Poll(0, group_, batch, kPollBatch);
  if (n == 0) return nullptr;
  if (n > 1) policy_->PushBatch(batch + 1, n - 1);
  return batch[0];
}

bool FiberWorker::HasReadyWork() const { return policy_->HasReadyWork(this); }

void FiberWorker::Wake() {
  wake_generation_.fetch_add(1, std::memory_order_seq_cst);
  if (in_poller_.load(std::memory_order_seq_cst)) {
    group_->poller().Interrupt();
    return;
  }
  FutexWake(&wake_generation_, 1);
}

void FiberWorker::CollectStats(WorkerStats* out) const {
  out->fibers_finished = stats_.fibers_finished.Get();
  out->fibers_created = stats_.fibers_created.Get();
  out->switches = stats_.switches.Get();
  out->spins = stats_.spins.Get();
  out->sleeps = stats_.sleeps.Get();
  out->wakeups = stats_.wakeups.Get();
  out->steals_within_numa_node = stats_.steals_within_numa_node.Get();
  out->steals_across_numa_nodes = stats_.steals_across_numa_nodes.Get();
  out->stranded_rescues = stats_.stranded_rescues.Get();
}

void FiberMain(SwitchArrival arrival) {
  FiberWorker* worker = CompleteSwitch(arrival);
  FiberEntity* self = worker->current_fiber();
  *worker->errno_location_ = 0;  // a fiber starts with errno 0, whatever its thread had
  try {
    self->run(self->callable);
  } catch (const std::exception& e) {
    char message[512];
    std::snprintf(message, sizeof(message),
                  "an exception escaped fiber %llu: %s (catch it inside the fiber, or "
                  "use weft::Async to carry it to a future)",
                  static_cast<unsigned long long>(self->id), e.what());
    FatalError(message);
  } catch (...) {
    char message[256];
    std::snprintf(message, sizeof(message),
                  "an exception of a type not derived from std::exception escaped fiber "
                  "%llu",
                  static_cast<unsigned long long>(self->id));
    FatalError(message);
  }
  // Still in the fiber: FiberLocal destructors may block or use other
  // FiberLocals, and finish before a joiner returns.
  DestroyFiberLocals(self);
  if (self->references.load(std::memory_order_acquire) == 1) {
    // No Fiber handle is left (detached, or never joinable), so no one can be
    // joining: skip the exit lock.
    self->exited.store(true, std::memory_order_release);
  } else {
    Waiter* joiners;
    {
      LockGuard<Spinlock> lock(self->exit_lock);
      self->exited.store(true, std::memory_order_release);
      joiners = self->joiners.PopAll();
    }
    WaitQueue::WakeAll(joiners);
  }
  // The fiber may have moved to another worker while it ran.
  worker = CurrentWorker();
  worker->stats_.fibers_finished.Add();
  worker->SwitchAway(AfterSwitch::kReleaseExited);
  FatalError("an exited fiber was resumed");
}

}  // namespace weft::detail
