#include "runtime/detail/mutex.h"
#include "runtime/timer/timer.h"

#include <errno.h>

#include <algorithm>
#include <stdexcept>
#include <system_error>

#include "runtime/detail/check.h"
#include "runtime/detail/spinlock.h"
#include "runtime/fiber.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/timer_worker.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/this_fiber.h"

namespace weft {
namespace detail {
namespace {

// A user timer. References: one for the id (until Kill/Detach), one while the
// TimerWorker holds it (armed), which passes to the callback's run when due.
struct UserTimer {
  TimerEntry entry;                // first member: the TimerEntry* is the UserTimer*
  std::atomic<int> references{2};  // the id, and the first arming
  SteadyDuration period{0};
  std::size_t group_index = 0;
  TimerWorker* worker = nullptr;
  std::unique_ptr<TimerCallback> callback;

  Spinlock lock;
  bool armed WEFT_GUARDED_BY(lock) = true;  // held by the TimerWorker
  bool cancelled WEFT_GUARDED_BY(lock) = false;
  bool running WEFT_GUARDED_BY(lock) = false;
  std::uint64_t running_fiber WEFT_GUARDED_BY(lock) = 0;
  WaitQueue killers WEFT_GUARDED_BY(lock);

  static UserTimer* From(TimerEntry* entry) {
    return reinterpret_cast<UserTimer*>(entry);
  }
  static UserTimer* From(TimerId id) { return reinterpret_cast<UserTimer*>(id); }

  void Release() {
    if (references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  static void OnDue(TimerEntry* entry);
  static void OnDrop(TimerEntry* entry);
  void RunCallback();
  // Called with `lock` held after a run (or a launch that failed): wakes the
  // killers waiting for it.
  Waiter* EndRun() WEFT_REQUIRES(lock) {
    running = false;
    running_fiber = 0;
    return killers.PopAll();
  }
};

void UserTimer::OnDrop(TimerEntry* entry) {
  UserTimer* timer = From(entry);
  {
    detail::LockGuard<detail::Spinlock> guard(timer->lock);
    timer->armed = false;
  }
  timer->Release();
}

void UserTimer::OnDue(TimerEntry* entry) {
  UserTimer* timer = From(entry);
  timer->lock.lock();
  timer->armed = false;
  const bool cancelled = timer->cancelled;
  timer->running = !cancelled;
  timer->lock.unlock();
  if (cancelled) {
    timer->Release();
    return;
  }
  // The TimerWorker's reference now belongs to the callback's run.
  FiberAttributes attributes;
  attributes.scheduling_group = timer->group_index;
  bool started = false;
  try {
    started = StartFiberDetached(attributes, [timer] { timer->RunCallback(); });
  } catch (const std::exception&) {
    started = false;  // the runtime is going away with its groups
  }
  if (!started) {
    // The runtime is terminating: the timer is cancelled and never runs.
    Waiter* killers;
    {
      detail::LockGuard<detail::Spinlock> guard(timer->lock);
      timer->cancelled = true;
      killers = timer->EndRun();
    }
    WaitQueue::WakeAll(killers);
    timer->Release();
  }
}

void UserTimer::RunCallback() {
  {
    detail::LockGuard<detail::Spinlock> guard(lock);
    running_fiber = this_fiber::GetId();
  }
  callback->Run();
  bool rearm = false;
  Waiter* waiting_killers;
  {
    detail::LockGuard<detail::Spinlock> guard(lock);
    if (!cancelled && period.count() != 0) {
      // The next tick on the original schedule that is still ahead: a run
      // longer than the period skips ticks instead of queueing them.
      const SteadyTime now = std::chrono::steady_clock::now();
      SteadyTime next = entry.deadline + period;
      if (next <= now) {
        const auto behind = (now - entry.deadline) / period;
        next = entry.deadline + (behind + 1) * period;
      }
      entry.deadline = next;
      entry.dead.store(false, std::memory_order_relaxed);
      armed = true;
      rearm = true;
      references.fetch_add(1, std::memory_order_relaxed);
    }
    waiting_killers = EndRun();
  }
  WaitQueue::WakeAll(waiting_killers);
  if (rearm) worker->Submit(&entry);
  Release();
}

// The group whose TimerWorker serves a timer set by the caller: the caller's on
// a worker, one near the calling thread otherwise. `*ticket` tells whether the
// caller holds a launch ticket (which keeps the groups alive until released).
SchedulingGroup* GroupForTimer(bool* ticket) {
  FiberWorker* worker = CurrentWorker();
  *ticket = false;
  if (InFiber(worker)) return worker->group();
  if (!AcquireLaunchTicket()) {
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "weft::SetTimer: the runtime is not running (or is "
                            "terminating); call weft::StartRuntime() first");
  }
  *ticket = true;
  return GroupForNewFiber(kNearestSchedulingGroup, nullptr);
}

}  // namespace

void ThrowNonPositivePeriod() {
  throw std::invalid_argument(
      "weft::SetTimer: the period is zero, negative or NaN; pass a positive period, or "
      "use the one-shot SetTimer(at, callback)");
}

TimerId SetTimerImpl(SteadyTime at, SteadyDuration period,
                     std::unique_ptr<TimerCallback> callback) {
  WEFT_DCHECK(period.count() >= 0) << "a negative period reached SetTimerImpl";
  bool ticket = false;
  SchedulingGroup* group = GroupForTimer(&ticket);
  // Within a century of now, so that the schedule arithmetic of periodic
  // timers (deadline + period, now - deadline) cannot overflow. A century away
  // never comes, and a start a century ago is as good as any past start.
  const SteadyTime now = std::chrono::steady_clock::now();
  at = std::clamp(at, now - kFarFuture, now + kFarFuture);
  auto* timer = new UserTimer;
  timer->entry.deadline = at;
  timer->entry.on_due = &UserTimer::OnDue;
  timer->entry.on_drop = &UserTimer::OnDrop;
  timer->period = period;
  timer->group_index = group->index();
  timer->worker = &group->timer_worker();
  timer->callback = std::move(callback);
  timer->worker->Submit(&timer->entry);
  if (ticket) ReleaseLaunchTicket();
  return reinterpret_cast<TimerId>(timer);
}

}  // namespace detail

void KillTimer(TimerId id) {
  WEFT_CHECK(id != 0) << "KillTimer(0): 0 is never a timer id";
  detail::UserTimer* timer = detail::UserTimer::From(id);
  timer->lock.lock();
  timer->cancelled = true;
  if (timer->armed) timer->worker->Cancel(&timer->entry);
  // A callback may kill its own timer without waiting for itself. The run's
  // fiber id is 0 until its fiber starts, which is also what a plain thread's
  // GetId() returns: a plain thread is never the callback.
  const std::uint64_t caller = this_fiber::GetId();
  const bool from_own_callback =
      timer->running && caller != 0 && timer->running_fiber == caller;
  if (timer->running && !from_own_callback) {
    detail::Waiter waiter;
    timer->killers.Park(&waiter, timer->lock);  // returns when the run ended
  } else {
    timer->lock.unlock();
  }
  // The callback will never run again: its captures go now, before the caller
  // frees what they refer to, not with the timer's last reference (which a
  // finishing run may hold a little longer).
  if (!from_own_callback) timer->callback.reset();
  timer->Release();
}

void DetachTimer(TimerId id) {
  WEFT_CHECK(id != 0) << "DetachTimer(0): 0 is never a timer id";
  detail::UserTimer::From(id)->Release();
}

}  // namespace weft
