// A worker's io_uring, through which fibers' file calls (runtime/io/file.h)
// go, and their socket calls with the io_uring socket engine (runtime/io/fd.h):
// a fiber prepares its request in the ring of the worker it runs on, submits
// it at once and parks until the completion arrives.
//
// One ring per worker, created on the worker's first file call, so a group
// that never touches files pays nothing. No SQPOLL (a kernel thread that
// burns a CPU) and no SINGLE_ISSUER/DEFER_TASKRUN: a fiber may resume on
// another worker, and any worker of the group may reap any ring.
//
// Who touches what:
// - The submission queue: under the ring's submit lock, held from preparing
//   to submitting: a fiber running on the owning worker starts its requests
//   there, and any thread may submit a cancellation (Close() of a socket
//   whose call waits in this ring).
// - The completion queue: whoever holds the ring's reap flag, any worker of
//   the group: the owner between fibers (a load of the CQ head and tail, like
//   PollWithoutWaiting) and before it sleeps; a submitting fiber right after
//   its submission (reads from the page cache complete inside the submit, and
//   the fiber then does not park at all); and a worker sleeping in the
//   group's poller, woken by the ring's eventfd (io_uring_register_eventfd),
//   which is a CompletionSource of the poller (io_poller.h).
// - A RingRequest: lives in the parked fiber's frame, which stays alive (the
//   fiber parked) until its completion was reaped, whichever worker the fiber
//   resumes on. The kernel's writes into the caller's buffer are done before
//   the completion is posted, so the buffer may be on the fiber's stack.
//
// - A standing request (a multishot accept, runtime/io/detail/accept_stream.h)
//   is not in a fiber's frame: its owner's on_completion runs for each of its
//   completions, and may take a descriptor slot's lock. Close() submits
//   cancellations under that lock, so the reap that Submit makes to find
//   room, under the submit lock, stops short of such a completion.
//
// Nothing is lost when the ring is full. File requests are counted: at most
// cq_entries of their completions are outstanding per ring (a request with a
// deadline needs two, one for its linked timeout); a fiber that finds no room
// parks on the ring until a completion makes room and then tries again on
// whatever worker it resumed on. Socket requests are not counted: one may
// wait for days (an idle connection), and a server holds as many as it has
// connections, so no bound of the ring's size may stop them; cancellations
// are not counted either. Should completions exceed the completion queue,
// the kernel keeps the excess (IORING_FEAT_NODROP, Linux 5.5) and the reaper
// has it flush them (io_uring_get_events) once the queue is drained.
//
// Shutdown: every request but a standing one belongs to a parked fiber, and
// TerminateRuntime waits for every fiber, so none is in flight when the
// workers stop and their rings are destroyed. A standing request (a
// multishot accept on a listener still open) is cancelled by the ring's
// destruction, which reaps until its last completion.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/detail/sanitizers.h"
#include "runtime/detail/spinlock.h"
#include "runtime/runtime_options.h"
#include "runtime/runtime_stats.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/io_poller.h"
#include "runtime/scheduling_group/wait_queue.h"

#if defined(WEFT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {

class FileRing;

// Linux moves at most this much in one read or write (MAX_RW_COUNT);
// io_uring's length field is 32 bits.
constexpr std::size_t kMaxRingTransfer = 0x7ffff000;
// A transfer length as a ring request carries it.
inline unsigned RingLength(std::size_t n) {
  return static_cast<unsigned>(n < kMaxRingTransfer ? n : kMaxRingTransfer);
}

// One request in flight, in the frame of the fiber that waits for it.
struct RingRequest {
  Spinlock lock;
  WaitQueue waiter WEFT_GUARDED_BY(lock);  // the fiber, once it parked
  bool done WEFT_GUARDED_BY(lock) = false;
  int result WEFT_GUARDED_BY(lock) = 0;  // the CQE's res: a count or -errno
  // Whether it (and its linked timeout) count against the ring's room.
  bool counted = true;
  // The ring it was submitted to, set once it was (a socket call's request,
  // which Close() may cancel: DescriptorState::ring_requests).
  std::atomic<FileRing*> ring{nullptr};
  // A standing request (a multishot, FileRing::StartStanding) is not in a
  // fiber's frame: the reaper calls this for each of its completions, with
  // the CQE's result and flags (IORING_CQE_F_MORE while it stands), instead
  // of waking a waiter. The call without F_MORE is its last: the request may
  // be freed from then on.
  // It returns the waiter the completion wakes, if any, which the reaper
  // hands on as it does a waiting request's fiber (into its worker's batch).
  Waiter* (*on_completion)(RingRequest* request, int result, unsigned flags) = nullptr;
  // A standing request's kind, for the ring's counters (AddStats).
  enum class Standing : std::uint8_t { kAccept, kReceive };
  Standing standing = Standing::kAccept;
};

// The request travels from the submitter to the reaper through the kernel
// (user_data), where ThreadSanitizer cannot see it: these mark the hand-off
// (release before the submit, acquire when the completion is reaped).
inline void HandToKernel([[maybe_unused]] RingRequest* request) {
#if defined(WEFT_TSAN)
  __tsan_release(request);
#endif
}
inline void TakeFromKernel([[maybe_unused]] RingRequest* request) {
#if defined(WEFT_TSAN)
  __tsan_acquire(request);
#endif
}

class FileRing final : public CompletionSource {
 public:
  // A ring of `entries` submission entries (twice as many completion
  // entries) whose eventfd joins `poller`. nullptr, with the reason in
  // `error`, when the kernel refuses.
  static std::unique_ptr<FileRing> Create(unsigned entries, IoPoller& poller,
                                          std::string* error);
  ~FileRing();
  FileRing(const FileRing&) = delete;
  FileRing& operator=(const FileRing&) = delete;

  // Called by a fiber running on the owning worker: prepares one request with
  // `prepare(sqe)` (which must not set user_data), linked to a timeout at
  // `deadline` unless it is kNoDeadline, submits it and returns true; false
  // without submitting when the ring has no room for a counted request (call
  // WaitForRoom, then try again on the worker the fiber then runs on). An
  // uncounted request (request->counted false) is always submitted.
  template <class Prepare>
  bool TryStart(RingRequest* request, std::chrono::steady_clock::time_point deadline,
                Prepare&& prepare);

  // Called by a fiber running on the owning worker: submits a standing
  // request (request->on_completion set, uncounted) prepared by
  // `prepare(sqe)`. It stands until its last completion, which Cancel()
  // brings about; the ring's destruction cancels the ones still standing and
  // waits for their last completions.
  template <class Prepare>
  void StartStanding(RingRequest* request, Prepare&& prepare);

  // Asks the kernel to cancel `request`, submitted to this ring and not yet
  // reaped (its completion then says -ECANCELED, or what it did if it had
  // finished). Any thread; the request must stay alive until this returns.
  // The cancellation's own completion is not counted.
  void Cancel(RingRequest* request);

  // Parks the calling fiber until this ring may have room for `needed`
  // completions (1, or 2 with a deadline). May return spuriously.
  void WaitForRoom(unsigned needed);

  // Parks the calling fiber until `request` (started by TryStart) completed,
  // and returns its result. Reaps this ring first if the caller still runs on
  // its worker, so a request the kernel served inside the submit returns
  // without a switch.
  static int Wait(RingRequest* request, FileRing* ring);

  // Whether completions wait in the CQ: two loads, any thread.
  bool HasCompletions() const {
    return __atomic_load_n(ring_.cq.ktail, __ATOMIC_ACQUIRE) !=
               __atomic_load_n(ring_.cq.khead, __ATOMIC_RELAXED) ||
           (__atomic_load_n(ring_.sq.kflags, __ATOMIC_RELAXED) & IORING_SQ_CQ_OVERFLOW) != 0;
  }

  // user_data of the completions no fiber waits for: a linked timeout's or a
  // cancellation's, counted against the room or not.
  static constexpr std::uint64_t kCountedExtra = 0;
  static constexpr std::uint64_t kUncountedExtra = 1;

  // Reaps the completions there are, unless another thread is reaping: fibers
  // of `group` whose requests completed are stored in `ready` (up to
  // `capacity`), the others readied. Returns how many were stored.
  std::size_t Reap(SchedulingGroup* group, FiberEntity** ready, std::size_t capacity);

  std::size_t OnSignal(SchedulingGroup* group, FiberEntity** ready,
                       std::size_t capacity) override;

  // Adds this ring's counters to `out`. Any thread.
  void AddStats(FileIoStats* out) const;

  // Provided buffers for multishot receives (runtime/io/detail/
  // receive_stream.h): kProvidedCount buffers of kProvidedSize bytes in
  // buffer group kProvidedGroup, registered with the kernel on the first
  // call. Returns false when the kernel refuses them (before Linux 5.19).
  // Any thread.
  bool ProvideBuffers();
  static constexpr unsigned kProvidedGroup = 0;
  static constexpr unsigned kProvidedCount = 1024;
  static constexpr unsigned kProvidedSize = 1024;
  // For a standing request's on_completion, run by the reaper: the bytes the
  // kernel put in the buffer named by the completion's `flags`
  // (IORING_CQE_F_BUFFER set), and the buffer's return to the kernel once
  // they were copied out.
  const char* ProvidedBuffer(unsigned flags) const;
  void ReturnBuffer(unsigned flags);

 private:
  FileRing() = default;
  // Submits what was prepared: one request (and its linked timeout).
  void Submit() WEFT_REQUIRES(submit_lock_);
  // Reap(), which without `with_standing` stops at the first completion of a
  // standing request (Submit's reap, under the submit lock).
  std::size_t Reap(SchedulingGroup* group, FiberEntity** ready, std::size_t capacity,
                   bool with_standing);
  // Forgets a standing request whose last completion is being reaped.
  void EndStanding(RingRequest* request);
  // Cancels the standing requests and reaps until their last completions.
  void CancelStanding();
  void AfterReap(unsigned completions, SchedulingGroup* group, FiberEntity** ready,
                 std::size_t capacity, std::size_t* stored);

  // Guards the submission side of `ring_` (the completion side is the
  // reaper's, see reaping_).
  Spinlock submit_lock_;
  io_uring ring_{};
  int event_fd_ = -1;
  unsigned capacity_ = 0;  // completion entries
  // Completions outstanding: added by the owner, subtracted by reapers.
  std::atomic<unsigned> in_flight_{0};
  std::atomic<bool> reaping_{false};

  // Fibers waiting for room, and how many (read by reapers without the lock).
  std::atomic<unsigned> room_waiting_{0};
  Spinlock room_lock_;
  WaitQueue room_waiters_ WEFT_GUARDED_BY(room_lock_);

  // Standing requests (StartStanding) whose last completion has not been
  // reaped.
  Spinlock standing_lock_;
  std::vector<RingRequest*> standing_ WEFT_GUARDED_BY(standing_lock_);

  OwnerCounter submitted_;  // added under submit_lock_ (one writer at a time)
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> room_waits_{0};
  // Results of standing requests: connections multishot accepts took,
  // receives multishot receives made and their bytes.
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> received_bytes_{0};

  // Provided buffers (ProvideBuffers): 0 not tried, 1 registered, -1 refused.
  std::atomic<int> provided_state_{0};
  Spinlock provided_lock_;  // held while registering
  io_uring_buf_ring* buf_ring_ = nullptr;
  char* buffers_ = nullptr;
};

// The engine file calls use, chosen by StartRuntime.

// Chooses from `options` (io_engine, io_uring_entries) and probes the
// kernel; writes one line to standard error saying which engine files use
// and why, the first time and whenever that changes.
void ChooseFileEngine(const RuntimeOptions& options);
// Whether file calls of fibers go through the workers' rings.
bool FileRingsEnabled();
// Whether fibers' socket calls wait in the workers' rings (io_engine
// "io_uring" and the kernel allows it) rather than in the group's epoll.
bool SocketRingsEnabled();
unsigned FileRingEntries();
// A ring could not be created for a worker (logged once); its fibers' file
// calls use the blocking pool.
void ReportRingCreationFailure(const std::string& why);
// A fiber's file call ran on the blocking pool.
void CountFileFallback();
// The engine, the reason and the fallback count (the ring counters are
// added by each ring's AddStats).
void FillFileEngineStats(FileIoStats* out);

template <class Prepare>
bool FileRing::TryStart(RingRequest* request,
                        std::chrono::steady_clock::time_point deadline,
                        Prepare&& prepare) {
  const bool timed = deadline != std::chrono::steady_clock::time_point::max();
  const unsigned needed = !request->counted ? 0 : timed ? 2 : 1;
  if (needed != 0 && in_flight_.load(std::memory_order_acquire) + needed > capacity_) {
    return false;
  }
  submit_lock_.lock();
  // Submissions are flushed at once, so the SQ (which has room for at least
  // two) is empty here.
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  prepare(sqe);
  io_uring_sqe_set_data(sqe, request);
  HandToKernel(request);
  if (timed) {
    sqe->flags |= IOSQE_IO_LINK;
    const auto since_epoch = deadline.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    // steady_clock is CLOCK_MONOTONIC, the clock of IORING_TIMEOUT_ABS; the
    // kernel copies the time at submission.
    __kernel_timespec at{};
    at.tv_sec = seconds.count();
    at.tv_nsec =
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds)
            .count();
    io_uring_sqe* timeout = io_uring_get_sqe(&ring_);
    io_uring_prep_link_timeout(timeout, &at, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(timeout, request->counted ? kCountedExtra : kUncountedExtra);
    in_flight_.fetch_add(needed, std::memory_order_relaxed);
    Submit();  // while `at` lives
  } else {
    in_flight_.fetch_add(needed, std::memory_order_relaxed);
    Submit();
  }
  submit_lock_.unlock();
  return true;
}

template <class Prepare>
void FileRing::StartStanding(RingRequest* request, Prepare&& prepare) {
  request->counted = false;
  standing_lock_.lock();
  standing_.push_back(request);
  standing_lock_.unlock();
  submit_lock_.lock();
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // the SQ is empty (TryStart)
  prepare(sqe);
  io_uring_sqe_set_data(sqe, request);
  HandToKernel(request);
  Submit();
  submit_lock_.unlock();
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_
