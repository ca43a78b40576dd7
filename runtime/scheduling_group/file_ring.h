// A worker's io_uring, through which fibers' file calls (runtime/io/file.h)
// go: a fiber prepares its request in the ring of the worker it runs on,
// submits it at once and parks until the completion arrives.
//
// One ring per worker, created on the worker's first file call, so a group
// that never touches files pays nothing. No SQPOLL (a kernel thread that
// burns a CPU) and no SINGLE_ISSUER/DEFER_TASKRUN: a fiber may resume on
// another worker, and any worker of the group may reap any ring.
//
// Who touches what:
// - The submission queue: only the owning worker's thread (a fiber running on
//   it prepares and submits without switching in between).
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
// Nothing is lost when the ring is full: at most cq_entries completions are
// outstanding per ring (a request with a deadline needs two, one for its
// linked timeout), so the completion queue never overflows; a fiber that
// finds no room parks on the ring until a completion makes room and then
// tries again on whatever worker it resumed on.
//
// Shutdown: every request belongs to a parked fiber, and TerminateRuntime
// waits for every fiber, so no request is in flight when the workers stop and
// their rings are destroyed.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

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

// One request in flight, in the frame of the fiber that waits for it.
struct RingRequest {
  Spinlock lock;
  WaitQueue waiter WEFT_GUARDED_BY(lock);  // the fiber, once it parked
  bool done WEFT_GUARDED_BY(lock) = false;
  int result WEFT_GUARDED_BY(lock) = 0;  // the CQE's res: a count or -errno
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
  // without submitting when the ring has no room (call WaitForRoom, then try
  // again on the worker the fiber then runs on).
  template <class Prepare>
  bool TryStart(RingRequest* request, std::chrono::steady_clock::time_point deadline,
                Prepare&& prepare);

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
           __atomic_load_n(ring_.cq.khead, __ATOMIC_RELAXED);
  }

  // Reaps the completions there are, unless another thread is reaping: fibers
  // of `group` whose requests completed are stored in `ready` (up to
  // `capacity`), the others readied. Returns how many were stored.
  std::size_t Reap(SchedulingGroup* group, FiberEntity** ready, std::size_t capacity);

  std::size_t OnSignal(SchedulingGroup* group, FiberEntity** ready,
                       std::size_t capacity) override;

  // Adds this ring's counters to `out`. Any thread.
  void AddStats(FileIoStats* out) const;

 private:
  FileRing() = default;
  // Submits what was prepared: one request (and its linked timeout).
  void Submit();
  void AfterReap(unsigned completions, SchedulingGroup* group, FiberEntity** ready,
                 std::size_t capacity, std::size_t* stored);

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

  OwnerCounter submitted_;  // by the owner
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> room_waits_{0};
};

// The engine file calls use, chosen by StartRuntime.

// Chooses from `options` (io_engine, io_uring_entries) and probes the
// kernel; writes one line to standard error saying which engine files use
// and why, the first time and whenever that changes.
void ChooseFileEngine(const RuntimeOptions& options);
// Whether file calls of fibers go through the workers' rings.
bool FileRingsEnabled();
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
  const unsigned needed = timed ? 2 : 1;
  if (in_flight_.load(std::memory_order_acquire) + needed > capacity_) return false;
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
    io_uring_sqe_set_data(timeout, nullptr);
    in_flight_.fetch_add(needed, std::memory_order_relaxed);
    Submit();  // while `at` lives
  } else {
    in_flight_.fetch_add(needed, std::memory_order_relaxed);
    Submit();
  }
  return true;
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FILE_RING_H_
