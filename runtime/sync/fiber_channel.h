// A bounded multi-producer multi-consumer channel for fibers and plain threads.
//
//   weft::FiberChannel<Request> requests(128);
//   producer: if (!requests.Push(std::move(request))) { /* closed */ }
//   consumer: while (auto request = requests.Pop()) Handle(*request);
//
//   auto got = requests.PopFor(std::chrono::milliseconds(5));
//   if (got.status == weft::ChannelStatus::kTimedOut) { ... }
//
// Thread-safe; producers and consumers may be fibers or plain threads in any
// mix. Push() blocks while the channel is full, Pop() while it is empty; values
// are delivered in the order they were pushed, and waiting producers and
// consumers are served in FIFO order. A Push() happens-before the Pop() that
// receives its value.
//
// Hand-off: a value pushed while a consumer waits goes straight to the
// longest-waiting consumer, and a pop from a full channel moves the
// longest-waiting producer's value in behind the others, so a woken party never
// has to compete for what it was woken for.
//
// Close(): no value is accepted afterwards (pushes fail, and blocked producers
// wake and fail, their values untouched); consumers still receive every value
// already in the channel, then Pop() returns an empty optional. Closing twice
// is harmless.
//
// Timed forms (PushFor/PushUntil, PopFor/PopUntil) take any duration or
// time_point: zero, negative and past values only try, `max()` waits as long as
// it takes. They say why they failed: ChannelStatus::kTimedOut or kClosed. A
// failed push, timed or not, leaves its argument untouched.
//
// Lifetime: the channel may be destroyed as soon as no call on it is still
// waiting, e.g. right after the Pop() that took its last value returns, even
// while the producer of that value is still returning from Push(): a call
// touches the channel only under its lock, and the destructor takes that lock.
//
// Values are moved under a spinlock: keep T's move constructor cheap. If it
// throws, the exception reaches the caller whose value it is, and nothing else
// changes.
//
// Misuse aborts with a message: a capacity of zero, destroying a channel that
// fibers or threads still wait on.
#ifndef WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_
#define WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "runtime/detail/check.h"
#include "runtime/detail/deadline.h"
#include "runtime/detail/mutex.h"
#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft {

// How a timed channel operation ended.
enum class ChannelStatus {
  kOk,        // the value was pushed / popped
  kTimedOut,  // the deadline passed first
  kClosed,    // the channel is closed (and, for a pop, drained)
};

template <class T>
class FiberChannel {
 public:
  // What PopFor / PopUntil return: `value` holds the value exactly when
  // `status` is kOk.
  struct PopResult {
    ChannelStatus status;
    std::optional<T> value;
  };

  explicit FiberChannel(std::size_t capacity) : slots_(CheckedCapacity(capacity)) {}
  ~FiberChannel() {
    detail::LockGuard<detail::Spinlock> guard(lock_);
    WEFT_CHECK(pushers_.empty() && poppers_.empty())
        << "a FiberChannel was destroyed while fibers or threads wait on it; Close() "
           "it and let them return first";
  }
  FiberChannel(const FiberChannel&) = delete;
  FiberChannel& operator=(const FiberChannel&) = delete;

  // Waits for room, then appends `value`. False (value dropped) once closed.
  bool Push(T value) {
    return PushUntilSteady(value, detail::kNoDeadline) == ChannelStatus::kOk;
  }

  // Appends a copy of `value` if there is room now and the channel is open.
  bool TryPush(const T& value) { return TryPushImpl(value); }
  // Moves `value` in if there is room now; on failure `value` is untouched.
  bool TryPush(T&& value) { return TryPushImpl(value); }

  // Push() that gives up after `timeout`. On failure `value` is untouched.
  template <class Rep, class Period>
  ChannelStatus PushFor(T&& value, const std::chrono::duration<Rep, Period>& timeout) {
    return PushUntilSteady(value, detail::DeadlineAfter(timeout));
  }
  template <class Rep, class Period>
  ChannelStatus PushFor(const T& value,
                        const std::chrono::duration<Rep, Period>& timeout) {
    T copy(value);
    return PushUntilSteady(copy, detail::DeadlineAfter(timeout));
  }
  // Push() that gives up at `deadline` (any clock). On failure `value` is
  // untouched.
  template <class Clock, class Duration>
  ChannelStatus PushUntil(T&& value,
                          const std::chrono::time_point<Clock, Duration>& deadline) {
    return PushUntilSteady(value, detail::ToSteadyDeadline(deadline));
  }
  template <class Clock, class Duration>
  ChannelStatus PushUntil(const T& value,
                          const std::chrono::time_point<Clock, Duration>& deadline) {
    T copy(value);
    return PushUntilSteady(copy, detail::ToSteadyDeadline(deadline));
  }

  // Waits for a value and removes it; empty once the channel is closed and
  // drained.
  std::optional<T> Pop() { return PopUntilSteady(detail::kNoDeadline).value; }

  // Removes a value if one is there now.
  std::optional<T> TryPop() {
    std::optional<T> value;
    detail::Waiter* producer = nullptr;
    {
      detail::LockGuard<detail::Spinlock> guard(lock_);
      if (count_ == 0) return value;
      producer = TakeFrontLocked(&value);
    }
    if (producer != nullptr) detail::WaitQueue::Wake(producer);
    return value;
  }

  // Pop() that gives up after `timeout` / at `deadline` (any clock).
  template <class Rep, class Period>
  PopResult PopFor(const std::chrono::duration<Rep, Period>& timeout) {
    return PopUntilSteady(detail::DeadlineAfter(timeout));
  }
  template <class Clock, class Duration>
  PopResult PopUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
    return PopUntilSteady(detail::ToSteadyDeadline(deadline));
  }

  // Closes the channel (see the file comment) and wakes everyone waiting.
  void Close() {
    detail::Waiter* producers;
    detail::Waiter* consumers;
    {
      detail::LockGuard<detail::Spinlock> guard(lock_);
      closed_ = true;
      producers = pushers_.PopAll();
      consumers = poppers_.PopAll();
      for (detail::Waiter* w = producers; w != nullptr; w = w->next) {
        static_cast<PushWaiter*>(w)->status = ChannelStatus::kClosed;
      }
      for (detail::Waiter* w = consumers; w != nullptr; w = w->next) {
        static_cast<PopWaiter*>(w)->status = ChannelStatus::kClosed;
      }
    }
    detail::WaitQueue::WakeAll(producers);
    detail::WaitQueue::WakeAll(consumers);
  }

  // Values in the channel now (a snapshot).
  std::size_t Size() const { return size_.load(std::memory_order_relaxed); }
  std::size_t Capacity() const { return slots_.size(); }

 private:
  struct PushWaiter : detail::Waiter {
    T* value = nullptr;  // moved from by the consumer that takes it
    ChannelStatus status = ChannelStatus::kTimedOut;
    std::exception_ptr error;  // T's move constructor threw on the way in
  };
  struct PopWaiter : detail::Waiter {
    std::optional<T>* slot = nullptr;  // filled by the producer that hands over
    ChannelStatus status = ChannelStatus::kTimedOut;
  };

  static std::size_t CheckedCapacity(std::size_t capacity) {
    WEFT_CHECK(capacity >= 1) << "FiberChannel needs a capacity of at least 1";
    return capacity;
  }

  // Under lock_, with room: appends `value` (copied or moved from).
  template <class U>
  void AppendLocked(U&& value) WEFT_REQUIRES(lock_) {
    std::size_t tail = head_ + count_;
    if (tail >= slots_.size()) tail -= slots_.size();
    slots_[tail].emplace(std::forward<U>(value));
    ++count_;
    size_.store(count_, std::memory_order_relaxed);
  }

  // Under lock_, with count_ > 0: moves the oldest value into `*out`, then the
  // longest-waiting producer's value in behind the others. Returns that
  // producer, to be woken after the lock is released, or nullptr.
  detail::Waiter* TakeFrontLocked(std::optional<T>* out) WEFT_REQUIRES(lock_) {
    out->emplace(std::move(*slots_[head_]));
    slots_[head_].reset();
    if (++head_ == slots_.size()) head_ = 0;
    --count_;
    size_.store(count_, std::memory_order_relaxed);
    auto* producer = static_cast<PushWaiter*>(pushers_.PopFront());
    if (producer == nullptr) return nullptr;
    try {
      AppendLocked(std::move(*producer->value));
      producer->status = ChannelStatus::kOk;
    } catch (...) {
      producer->error = std::current_exception();
    }
    return producer;
  }

  // U is T (moves) or const T (copies).
  template <class U>
  bool TryPushImpl(U& value) {
    detail::Waiter* consumer = nullptr;
    {
      detail::LockGuard<detail::Spinlock> guard(lock_);
      if (closed_) return false;
      consumer = HandOffLocked(value);
      if (consumer == nullptr) {
        if (count_ == slots_.size()) return false;
        AppendLocked(std::forward<U>(value));
      }
    }
    if (consumer != nullptr) detail::WaitQueue::Wake(consumer);
    return true;
  }

  // Under lock_: gives `value` to the longest-waiting consumer, if any (then
  // the buffer is empty), and returns it to be woken; nullptr if none waits.
  template <class U>
  detail::Waiter* HandOffLocked(U& value) WEFT_REQUIRES(lock_) {
    auto* consumer = static_cast<PopWaiter*>(poppers_.front());
    if (consumer == nullptr) return nullptr;
    consumer->slot->emplace(std::forward<U>(value));  // may throw: nothing changed
    poppers_.PopFront();
    consumer->status = ChannelStatus::kOk;
    return consumer;
  }

  ChannelStatus PushUntilSteady(T& value, detail::SteadyTime deadline) {
    lock_.lock();
    if (closed_) {
      lock_.unlock();
      return ChannelStatus::kClosed;
    }
    detail::Waiter* consumer;
    try {
      consumer = HandOffLocked(value);
      if (consumer == nullptr && count_ < slots_.size()) {
        AppendLocked(std::move(value));
        lock_.unlock();
        return ChannelStatus::kOk;
      }
    } catch (...) {
      lock_.unlock();
      throw;
    }
    if (consumer != nullptr) {
      lock_.unlock();
      detail::WaitQueue::Wake(consumer);
      return ChannelStatus::kOk;
    }
    PushWaiter waiter;
    waiter.value = &value;
    if (!pushers_.ParkUntil(&waiter, lock_, deadline)) return ChannelStatus::kTimedOut;
    if (waiter.error) std::rethrow_exception(waiter.error);
    return waiter.status;
  }

  PopResult PopUntilSteady(detail::SteadyTime deadline) {
    PopResult result{ChannelStatus::kOk, std::nullopt};
    lock_.lock();
    if (count_ != 0) {
      detail::Waiter* producer;
      try {
        producer = TakeFrontLocked(&result.value);
      } catch (...) {
        lock_.unlock();
        throw;
      }
      lock_.unlock();
      if (producer != nullptr) detail::WaitQueue::Wake(producer);
      return result;
    }
    if (closed_) {
      lock_.unlock();
      result.status = ChannelStatus::kClosed;
      return result;
    }
    PopWaiter waiter;
    waiter.slot = &result.value;
    if (!poppers_.ParkUntil(&waiter, lock_, deadline)) {
      result.status = ChannelStatus::kTimedOut;
    } else {
      result.status = waiter.status;
    }
    return result;
  }

  mutable detail::Spinlock lock_;
  std::vector<std::optional<T>> slots_ WEFT_GUARDED_BY(lock_);  // a ring
  std::size_t head_ WEFT_GUARDED_BY(lock_) = 0;                 // the oldest value
  std::size_t count_ WEFT_GUARDED_BY(lock_) = 0;
  bool closed_ WEFT_GUARDED_BY(lock_) = false;
  // Producers wait only while the ring is full, consumers only while it is
  // empty: at most one queue is non-empty.
  detail::WaitQueue pushers_ WEFT_GUARDED_BY(lock_);
  detail::WaitQueue poppers_ WEFT_GUARDED_BY(lock_);
  std::atomic<std::size_t> size_{0};  // count_, for Size()
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_
