// A growable lock-free work-stealing deque (Chase and Lev, SPAA 2005) of a
// trivially copyable T: the per-worker local queue of the v2 scheduling policy.
//
// One thread, the owner, pushes and pops at the bottom (newest first, so a
// fiber's freshly made-ready children run on warm caches); any thread may steal
// from the top (oldest first, so thieves take the roots of the largest
// subtrees). The owner never waits for a thief and a thief never waits for
// anyone: every operation finishes in a bounded number of its own steps, except
// that a Push which finds the ring full first copies it into one twice as large.
//
// Thread-safety: Push() and Pop() may only be called by the owner, one call at a
// time; ownership may pass to another thread only with a happens-before edge
// (a mutex, a thread join). Steal(), Size() and capacity() may be called by any
// thread concurrently with everything. Two threads calling Push/Pop at once, or
// a thief calling them, corrupt the deque silently (no cheap check can tell).
// Items are copied in and out with atomic loads and stores, so everything the
// owner wrote before Push(x) happens-before whatever the thread that takes x
// does after Pop() or Steal() returns it.
//
// Memory orders: those of the portable C11 version in Lê, Pop, Cohen and Zappa
// Nardelli, "Correct and Efficient Work-Stealing for Weak Memory Models" (PPoPP
// 2013), whose proof covers the equivalent POWER/ARM barrier placement:
//   Push   top.load(acquire)      orders the thieves' reads of the slots it may
//                                   now overwrite (a ring lap behind) before the write
//          slot.store(relaxed)    published by the release fence below
//          fence(release)         the item (and the grown ring) become visible no
//          bottom.store(relaxed)    later than the bottom that exposes them
//   Pop    bottom.store(relaxed)  claims the bottom slot ...
//          fence(seq_cst)         ... before reading top: with the thief's seq_cst
//          top.load(relaxed)        fence this is Dekker's pattern, so owner and
//                                   thief cannot both miss the other's claim
//          top.CAS(seq_cst)       on the last item, owner and thieves race on top
//   Steal  top.load(acquire)      pairs with the CAS that set this top, so what
//                                   follows is no older than that thief's view
//          fence(seq_cst)         the other half of the Dekker pattern above
//          bottom.load(acquire)   synchronises with Push's release fence: the
//                                   slot below bottom holds the pushed item
//          array.load(acquire)    a grown ring is seen with its copied contents
//                                   (the paper's consume, which compilers treat as
//                                   acquire anyway)
//          top.CAS(seq_cst)       claims the item; losers return kLostRace
// ThreadSanitizer does not model atomic_thread_fence, so under WEFT_TSAN the
// fences are replaced by the stronger formulation it understands: bottom's store
// in Pop and the loads of top and bottom in Pop and Steal are seq_cst operations
// (the original, sequentially consistent Chase–Lev), and Push stores bottom with
// release. Slots are std::atomic<T> accessed relaxed, so a thief that reads a
// slot the owner is overwriting (it then loses its CAS) is not a data race.
//
// Growth and memory: capacity starts at the constructor's argument (a power of
// two) and doubles whenever Push finds the ring full; it never shrinks. A thief
// may still be reading the ring that growth replaced, so replaced rings are not
// freed but retired to a list that the destructor frees. Their sizes are c, 2c,
// ..., N/2 for a largest ring of N slots, so the deque never holds more than 2N
// slots in all. The destructor must not run concurrently with any other call.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_WORK_STEALING_DEQUE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_WORK_STEALING_DEQUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "runtime/detail/check.h"
#include "runtime/detail/sanitizers.h"

namespace weft::detail {

// What Steal() found: an item, an empty deque, or a race lost to the owner or
// another thief (the deque was not empty; retrying may succeed).
template <class T>
class StealResult {
 public:
  enum class Status { kStolen, kEmpty, kLostRace };

  static StealResult Stolen(T value) { return StealResult(Status::kStolen, value); }
  static StealResult Empty() { return StealResult(Status::kEmpty, T{}); }
  static StealResult LostRace() { return StealResult(Status::kLostRace, T{}); }

  Status status() const { return status_; }
  bool stolen() const { return status_ == Status::kStolen; }
  bool empty() const { return status_ == Status::kEmpty; }
  bool lost_race() const { return status_ == Status::kLostRace; }
  explicit operator bool() const { return stolen(); }

  // The stolen item. Precondition: stolen() (aborts otherwise).
  const T& value() const {
    WEFT_CHECK(stolen()) << "StealResult::value() on a steal that took nothing";
    return value_;
  }
  const T& operator*() const { return value(); }

 private:
  StealResult(Status status, T value) : status_(status), value_(value) {}

  Status status_;
  T value_;
};

template <class T>
class WorkStealingDeque {
  static_assert(std::is_trivially_copyable_v<T>,
                "WorkStealingDeque copies items through std::atomic<T>");

 public:
  static constexpr std::size_t kDefaultCapacity = 256;

  // `initial_capacity` must be a power of two, at least 2 (aborts otherwise).
  explicit WorkStealingDeque(std::size_t initial_capacity = kDefaultCapacity)
      : array_(NewRing(initial_capacity)) {}

  ~WorkStealingDeque() { delete array_.load(std::memory_order_relaxed); }

  WorkStealingDeque(const WorkStealingDeque&) = delete;
  WorkStealingDeque& operator=(const WorkStealingDeque&) = delete;

  // Owner only. Adds `value` at the bottom, doubling the ring first if it is full
  // (the only case that allocates). Never fails except by running out of memory.
  void Push(T value) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_acquire);
    Ring* ring = array_.load(std::memory_order_relaxed);
    if (b - t > static_cast<std::int64_t>(ring->mask)) ring = Grow(ring, t, b);
    ring->at(b).store(value, std::memory_order_relaxed);
#if defined(WEFT_TSAN)
    bottom_.store(b + 1, std::memory_order_release);
#else
    std::atomic_thread_fence(std::memory_order_release);
    bottom_.store(b + 1, std::memory_order_relaxed);
#endif
  }

  // Owner only. Removes and returns the newest item, or nullopt when the deque is
  // empty (including when a thief took the last item first).
  std::optional<T> Pop() {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Ring* ring = array_.load(std::memory_order_relaxed);
#if defined(WEFT_TSAN)
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
#else
    bottom_.store(b, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_relaxed);
#endif
    if (t > b) {  // Was empty: undo the claim.
      bottom_.store(b + 1, std::memory_order_relaxed);
      return std::nullopt;
    }
    T value = ring->at(b).load(std::memory_order_relaxed);
    if (t < b) return value;  // At least one more item stands between us and thieves.
    // The last item: whoever moves top past it first takes it.
    const bool won = top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed);
    bottom_.store(b + 1, std::memory_order_relaxed);
    if (!won) return std::nullopt;
    return value;
  }

  // Any thread. Takes the oldest item; see StealResult for the outcomes. A thief
  // that loses a race may retry at once: someone else made progress.
  StealResult<T> Steal() {
#if defined(WEFT_TSAN)
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
#else
    std::int64_t t = top_.load(std::memory_order_acquire);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
#endif
    if (t >= b) return StealResult<T>::Empty();
    Ring* ring = array_.load(std::memory_order_acquire);
    // Read before claiming: once top moves past t the owner may overwrite the slot.
    T value = ring->at(t).load(std::memory_order_relaxed);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return StealResult<T>::LostRace();
    }
    return StealResult<T>::Stolen(value);
  }

  // Any thread. The number of items, exact only for the owner between its own
  // calls while no thief is active; otherwise a hint that may be stale (never
  // negative).
  std::size_t Size() const {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? static_cast<std::size_t>(b - t) : 0;
  }

  bool LooksEmpty() const { return Size() == 0; }

  // Any thread. The current ring's number of slots (grows, never shrinks).
  std::size_t capacity() const {
    return array_.load(std::memory_order_relaxed)->mask + 1;
  }

 private:
  // A ring of 2^k slots indexed by the unbounded positions top and bottom.
  struct Ring {
    explicit Ring(std::size_t capacity)
        : mask(capacity - 1), slots(new std::atomic<T>[capacity]) {}
    std::atomic<T>& at(std::int64_t position) {
      return slots[static_cast<std::size_t>(position) & mask];
    }
    const std::size_t mask;
    const std::unique_ptr<std::atomic<T>[]> slots;
  };

  static Ring* NewRing(std::size_t capacity) {
    WEFT_CHECK(capacity >= 2 && (capacity & (capacity - 1)) == 0)
        << "WorkStealingDeque capacity must be a power of two >= 2, got " << capacity;
    return new Ring(capacity);
  }

  // Owner only: copies the items in [t, b) into a ring twice as large and
  // publishes it. Items at positions below a concurrently advanced top are copied
  // too; they are never read again, since positions only grow. The release store
  // publishes the copies to thieves that load the ring with acquire; Push's own
  // release fence publishes them to thieves that reach the ring through bottom.
  Ring* Grow(Ring* old_ring, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<Ring>((old_ring->mask + 1) * 2);
    for (std::int64_t i = t; i < b; ++i) {
      bigger->at(i).store(old_ring->at(i).load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
    }
    retired_.emplace_back(old_ring);
    Ring* ring = bigger.release();
    array_.store(ring, std::memory_order_release);
    return ring;
  }

  // Thieves bump top, the owner bottom: separate cache lines keep a steal from
  // invalidating the owner's line on every push.
  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  std::atomic<Ring*> array_;
  // Owner only: rings replaced by growth, freed with the deque.
  std::vector<std::unique_ptr<Ring>> retired_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_WORK_STEALING_DEQUE_H_
