// A bounded multi-producer multi-consumer channel for fibers and plain threads.
//
//   weft::FiberChannel<Request> requests(128);
//   producer: if (!requests.Push(std::move(request))) { /* closed */ }
//   consumer: while (auto request = requests.Pop()) Handle(*request);
//
// Thread-safe; producers and consumers may be fibers or plain threads in any
// mix. Push() blocks while the channel is full, Pop() while it is empty; values
// are delivered in the order they were pushed. A Push() happens-before the Pop()
// that receives its value.
//
// Close(): no value is accepted afterwards (Push and TryPush return false,
// blocked producers wake and return false, their values untouched); consumers
// still receive every value already in the channel, then Pop() returns an empty
// optional. Closing twice is harmless.
//
// Misuse aborts with a message: a capacity of zero.
#ifndef WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_
#define WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_

#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_mutex.h"

namespace weft {

template <class T>
class FiberChannel {
 public:
  explicit FiberChannel(std::size_t capacity) : capacity_(capacity) {
    WEFT_CHECK(capacity >= 1) << "FiberChannel needs a capacity of at least 1";
  }
  FiberChannel(const FiberChannel&) = delete;
  FiberChannel& operator=(const FiberChannel&) = delete;

  // Waits for room, then appends `value`. False (value dropped) once closed.
  bool Push(T value) {
    std::unique_lock<FiberMutex> lock(mutex_);
    if (!closed_ && values_.size() >= capacity_) {
      ++waiting_pushers_;
      not_full_.wait(lock, [&] { return closed_ || values_.size() < capacity_; });
      --waiting_pushers_;
    }
    if (closed_) return false;
    values_.push_back(std::move(value));
    const bool wake = waiting_poppers_ != 0;
    lock.unlock();
    if (wake) not_empty_.notify_one();
    return true;
  }

  // Appends a copy of `value` if there is room now and the channel is open.
  bool TryPush(const T& value) { return TryPushImpl(value); }
  // Moves `value` in if there is room now; on failure `value` is untouched.
  bool TryPush(T&& value) { return TryPushImpl(std::move(value)); }

  // Waits for a value and removes it; empty once the channel is closed and
  // drained.
  std::optional<T> Pop() {
    std::unique_lock<FiberMutex> lock(mutex_);
    if (!closed_ && values_.empty()) {
      ++waiting_poppers_;
      not_empty_.wait(lock, [&] { return closed_ || !values_.empty(); });
      --waiting_poppers_;
    }
    return TakeFront(lock);
  }

  // Removes a value if one is there now.
  std::optional<T> TryPop() {
    std::unique_lock<FiberMutex> lock(mutex_);
    return TakeFront(lock);
  }

  void Close() {
    {
      std::lock_guard<FiberMutex> lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  template <class U>
  bool TryPushImpl(U&& value) {
    bool wake;
    {
      std::lock_guard<FiberMutex> lock(mutex_);
      if (closed_ || values_.size() >= capacity_) return false;
      values_.push_back(std::forward<U>(value));
      wake = waiting_poppers_ != 0;
    }
    if (wake) not_empty_.notify_one();
    return true;
  }

  std::optional<T> TakeFront(std::unique_lock<FiberMutex>& lock) {
    if (values_.empty()) return std::nullopt;
    std::optional<T> value(std::move(values_.front()));
    values_.pop_front();
    const bool wake = waiting_pushers_ != 0;
    lock.unlock();
    if (wake) not_full_.notify_one();
    return value;
  }

  const std::size_t capacity_;
  FiberMutex mutex_;
  FiberConditionVariable not_full_;
  FiberConditionVariable not_empty_;
  std::deque<T> values_;  // guarded by mutex_
  bool closed_ = false;   // guarded by mutex_
  // Parties waiting on not_full_ / not_empty_; guarded by mutex_. Nobody to
  // wake, no notification: the common, flowing case skips the condition
  // variables entirely.
  int waiting_pushers_ = 0;
  int waiting_poppers_ = 0;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_CHANNEL_H_
