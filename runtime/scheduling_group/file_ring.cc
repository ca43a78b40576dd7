#include "runtime/scheduling_group/file_ring.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include "runtime/detail/check.h"
#include "runtime/detail/libc.h"
#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {
namespace {

// Hands a woken waiter on as IoPoller::Poll does: fibers of `group` into
// `ready` while there is room, the others readied where they belong.
void Deliver(Waiter* waiter, SchedulingGroup* group, FiberEntity** ready,
             std::size_t capacity, std::size_t* stored) {
  FiberEntity* fiber = waiter->fiber;
  if (fiber == nullptr) {
    WaitQueue::Wake(waiter);
  } else if (group != nullptr && fiber->group == group && *stored < capacity) {
    fiber->state.store(FiberState::kReady, std::memory_order_relaxed);
    ready[(*stored)++] = fiber;
  } else {
    ReadyFiber(fiber);
  }
}

struct EngineState {
  Mutex mutex;
  std::string engine WEFT_GUARDED_BY(mutex);
  std::string reason WEFT_GUARDED_BY(mutex);
  std::string logged WEFT_GUARDED_BY(mutex);  // the last line written
  bool failure_logged WEFT_GUARDED_BY(mutex) = false;
  std::atomic<bool> rings{false};
  std::atomic<bool> socket_rings{false};
  std::string socket_engine WEFT_GUARDED_BY(mutex);
  std::atomic<unsigned> entries{256};
  std::atomic<std::uint64_t> fallbacks{0};
};

EngineState& Engine() {
  static EngineState* state = new EngineState;
  return *state;
}

// /proc/sys/kernel/io_uring_disabled (0: allowed, 1: only for privileged
// processes or io_uring_group, 2: off), or -1 where the kernel has no such
// switch.
int IoUringDisabledSetting() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

// Empty when the kernel lets this process set up a ring, otherwise why not.
std::string ProbeIoUring() {
  io_uring ring;
  const int result = io_uring_queue_init(2, &ring, 0);
  if (result == 0) {
    io_uring_queue_exit(&ring);
    return {};
  }
  std::string why = std::string("io_uring_queue_init failed: ") + std::strerror(-result);
  const int disabled = IoUringDisabledSetting();
  if (disabled > 0) {
    why += " (/proc/sys/kernel/io_uring_disabled is " + std::to_string(disabled) + ")";
  } else if (result == -ENOSYS || result == -EPERM) {
    why += " (no kernel support, or a seccomp filter refuses it)";
  }
  return why;
}

}  // namespace

std::unique_ptr<FileRing> FileRing::Create(unsigned entries, IoPoller& poller,
                                           std::string* error) {
  std::unique_ptr<FileRing> ring(new FileRing);
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = entries * 2;
  const int result = io_uring_queue_init_params(entries, &ring->ring_, &params);
  if (result < 0) {
    *error = std::string("io_uring_queue_init_params failed: ") + std::strerror(-result);
    return nullptr;
  }
  ring->capacity_ = params.cq_entries;
  ring->event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ring->event_fd_ < 0) {
    *error = std::string("eventfd failed: ") + std::strerror(errno);
    return nullptr;
  }
  if (const int r = io_uring_register_eventfd(&ring->ring_, ring->event_fd_); r < 0) {
    *error = std::string("io_uring_register_eventfd failed: ") + std::strerror(-r);
    return nullptr;
  }
  if (const int r = poller.AddCompletionSource(ring->event_fd_, ring.get()); r != 0) {
    *error =
        std::string("adding the ring's eventfd to epoll failed: ") + std::strerror(r);
    return nullptr;
  }
  return ring;
}

FileRing::~FileRing() {
  if (capacity_ != 0) {
    CancelStanding();
    io_uring_queue_exit(&ring_);
  }
  if (event_fd_ >= 0) Libc().close(event_fd_);
  if (buf_ring_ != nullptr) munmap(buf_ring_, kProvidedCount * sizeof(io_uring_buf));
  if (buffers_ != nullptr) munmap(buffers_, std::size_t{kProvidedCount} * kProvidedSize);
}

bool FileRing::ProvideBuffers() {
  const int state = provided_state_.load(std::memory_order_acquire);
  if (state != 0) return state > 0;
  provided_lock_.lock();
  if (provided_state_.load(std::memory_order_relaxed) == 0) {
    // Untouched pages: a buffer costs memory once the kernel first fills it.
    const std::size_t ring_bytes = kProvidedCount * sizeof(io_uring_buf);
    const std::size_t buffer_bytes = std::size_t{kProvidedCount} * kProvidedSize;
    void* ring = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* buffers = mmap(nullptr, buffer_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int registered = -ENOMEM;
    if (ring != MAP_FAILED && buffers != MAP_FAILED) {
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring);
      reg.ring_entries = kProvidedCount;
      reg.bgid = kProvidedGroup;
      registered = io_uring_register_buf_ring(&ring_, &reg, 0);
    }
    if (registered == 0) {
      buf_ring_ = static_cast<io_uring_buf_ring*>(ring);
      buffers_ = static_cast<char*>(buffers);
      io_uring_buf_ring_init(buf_ring_);
      const int mask = io_uring_buf_ring_mask(kProvidedCount);
      for (unsigned i = 0; i < kProvidedCount; ++i) {
        io_uring_buf_ring_add(buf_ring_, buffers_ + std::size_t{i} * kProvidedSize,
                              kProvidedSize, static_cast<unsigned short>(i), mask,
                              static_cast<int>(i));
      }
      io_uring_buf_ring_advance(buf_ring_, static_cast<int>(kProvidedCount));
    } else {
      if (ring != MAP_FAILED) munmap(ring, ring_bytes);
      if (buffers != MAP_FAILED) munmap(buffers, buffer_bytes);
    }
    provided_state_.store(registered == 0 ? 1 : -1, std::memory_order_release);
  }
  provided_lock_.unlock();
  return provided_state_.load(std::memory_order_acquire) > 0;
}

const char* FileRing::ProvidedBuffer(unsigned flags) const {
  return buffers_ + std::size_t{flags >> IORING_CQE_BUFFER_SHIFT} * kProvidedSize;
}

void FileRing::ReturnBuffer(unsigned flags) {
  // Only the reaper (one thread at a time, reaping_) returns buffers.
  const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
  io_uring_buf_ring_add(buf_ring_, buffers_ + std::size_t{id} * kProvidedSize,
                        kProvidedSize, static_cast<unsigned short>(id),
                        io_uring_buf_ring_mask(kProvidedCount), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
}

void FileRing::Submit() {
  for (;;) {
    const int result = io_uring_submit(&ring_);
    if (result >= 0) {
      if (io_uring_sq_ready(&ring_) == 0) break;
      continue;
    }
    if (result == -EINTR) continue;
    // Out of memory for the moment, or completions the kernel has not
    // posted yet: make room and try again.
    WEFT_CHECK(result == -EAGAIN || result == -EBUSY)
        << "weft: io_uring_submit failed: " << std::strerror(-result);
    // Not a standing request's completion: its owner takes locks (a slot's)
    // under which Close() submits a cancellation, which needs ours.
    Reap(nullptr, nullptr, 0, /*with_standing=*/false);
    sched_yield();
  }
  submitted_.Add();
}

void FileRing::EndStanding(RingRequest* request) {
  standing_lock_.lock();
  const auto it = std::find(standing_.begin(), standing_.end(), request);
  if (it != standing_.end()) standing_.erase(it);
  standing_lock_.unlock();
}

void FileRing::CancelStanding() {
  standing_lock_.lock();
  const std::vector<RingRequest*> standing = standing_;
  standing_lock_.unlock();
  if (standing.empty()) return;
  for (RingRequest* request : standing) Cancel(request);
  // Their last completions come promptly once cancelled; what they deliver
  // before (an accepted connection) is handed over as usual.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    Reap(nullptr, nullptr, 0);
    standing_lock_.lock();
    const bool left = !standing_.empty();
    standing_lock_.unlock();
    if (!left) return;
    if (std::chrono::steady_clock::now() > give_up) break;
    __kernel_timespec wait{0, 10'000'000};
    io_uring_cqe* cqe = nullptr;
    io_uring_wait_cqe_timeout(&ring_, &cqe, &wait);
  }
  // The kernel never ended them: the ring's exit will. Their owners learn it
  // as a last completion.
  standing_lock_.lock();
  const std::vector<RingRequest*> orphans = std::move(standing_);
  standing_.clear();
  standing_lock_.unlock();
  for (RingRequest* request : orphans) {
    if (Waiter* woken = request->on_completion(request, -ECANCELED, 0)) WaitQueue::Wake(woken);
  }
}

void FileRing::Cancel(RingRequest* request) {
  submit_lock_.lock();
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // the SQ is empty (TryStart)
  io_uring_prep_cancel(sqe, request, 0);
  io_uring_sqe_set_data64(sqe, kUncountedExtra);
  Submit();
  submit_lock_.unlock();
}

void FileRing::WaitForRoom(unsigned needed) {
  room_waits_.fetch_add(1, std::memory_order_relaxed);
  // Pairs with AfterReap: either it sees us counted, or we see its room.
  room_waiting_.fetch_add(1, std::memory_order_seq_cst);
  room_lock_.lock();
  if (in_flight_.load(std::memory_order_seq_cst) + needed <= capacity_) {
    room_lock_.unlock();
  } else {
    Waiter waiter;
    room_waiters_.Park(&waiter, room_lock_);
  }
  room_waiting_.fetch_sub(1, std::memory_order_relaxed);
}

int FileRing::Wait(RingRequest* request, FileRing* ring) {
  // Still on the submitting worker: a request served inside the submit is
  // there already.
  if (ring->HasCompletions()) ring->Reap(nullptr, nullptr, 0);
  request->lock.lock();
  if (!request->done) {
    Waiter waiter;
    request->waiter.Park(&waiter, request->lock);
    request->lock.lock();
  }
  const int result = request->result;
  request->lock.unlock();
  return result;
}

std::size_t FileRing::Reap(SchedulingGroup* group, FiberEntity** ready,
                           std::size_t capacity) {
  return Reap(group, ready, capacity, /*with_standing=*/true);
}

std::size_t FileRing::Reap(SchedulingGroup* group, FiberEntity** ready,
                           std::size_t capacity, bool with_standing) {
  std::size_t stored = 0;
  do {
    if (reaping_.load(std::memory_order_relaxed) ||
        reaping_.exchange(true, std::memory_order_acquire)) {
      // The holder looks again after it lets go (below).
      return stored;
    }
    unsigned count = 0;    // completions seen
    unsigned counted = 0;  // of those, counted against the room
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++count;
      const std::uint64_t data = io_uring_cqe_get_data64(cqe);
      // A linked timeout's or a cancellation's own completion.
      if (data == kCountedExtra) ++counted;
      if (data == kCountedExtra || data == kUncountedExtra) continue;
      auto* request = reinterpret_cast<RingRequest*>(static_cast<std::uintptr_t>(data));
      const int result = cqe->res;
      TakeFromKernel(request);
      if (request->on_completion != nullptr && !with_standing) {
        --count;  // left for a reaper that may run it
        break;
      }
      if (request->on_completion != nullptr) {
        if ((cqe->flags & IORING_CQE_F_MORE) == 0) EndStanding(request);
        if (result > 0 && request->standing == RingRequest::Standing::kReceive) {
          received_.fetch_add(1, std::memory_order_relaxed);
          received_bytes_.fetch_add(static_cast<unsigned>(result),
                                    std::memory_order_relaxed);
        } else if (result >= 0 && request->standing == RingRequest::Standing::kAccept) {
          accepted_.fetch_add(1, std::memory_order_relaxed);
        }
        if (Waiter* woken = request->on_completion(request, result, cqe->flags)) {
          Deliver(woken, group, ready, capacity, &stored);
        }
        completed_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      counted += request->counted;
      request->lock.lock();
      request->result = result;
      request->done = true;
      Waiter* waiter = request->waiter.PopFront();
      request->lock.unlock();
      // Without a waiter the fiber has not parked yet and finds `done`; the
      // request may be gone from here on.
      if (waiter != nullptr) Deliver(waiter, group, ready, capacity, &stored);
      completed_.fetch_add(1, std::memory_order_relaxed);
    }
    io_uring_cq_advance(&ring_, count);
    if (io_uring_cq_has_overflow(&ring_)) {
      // Completions the kernel kept aside while the queue was full: into the
      // queue now that it has room (the loop below takes them).
      io_uring_get_events(&ring_);
    }
    reaping_.store(false, std::memory_order_seq_cst);
    if (counted != 0) AfterReap(counted, group, ready, capacity, &stored);
    // A reaper that found us holding the flag gave up (after draining the
    // eventfd): completions posted since our look are ours to take.
    if (!with_standing) {
      // The standing completion we stopped at, if any, is the next reaper's:
      // make sure there is one.
      if (HasCompletions()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof(one));
      }
      break;
    }
  } while (HasCompletions());
  return stored;
}

void FileRing::AfterReap(unsigned completions, SchedulingGroup* group,
                         FiberEntity** ready, std::size_t capacity, std::size_t* stored) {
  const unsigned left =
      in_flight_.fetch_sub(completions, std::memory_order_seq_cst) - completions;
  if (room_waiting_.load(std::memory_order_seq_cst) == 0) return;
  // One waiter per completion; all of them once the ring is empty, since a
  // woken waiter that resumed on another worker uses that worker's ring and
  // no later completion here would wake the rest.
  Waiter* woken = nullptr;
  room_lock_.lock();
  for (unsigned i = 0; left == 0 || i < completions; ++i) {
    Waiter* waiter = room_waiters_.PopFront();
    if (waiter == nullptr) break;
    waiter->next = woken;
    woken = waiter;
  }
  room_lock_.unlock();
  while (woken != nullptr) {
    Waiter* next = woken->next;
    Deliver(woken, group, ready, capacity, stored);
    woken = next;
  }
}

std::size_t FileRing::OnSignal(SchedulingGroup* group, FiberEntity** ready,
                               std::size_t capacity) {
  std::uint64_t count;
  while (Libc().read(event_fd_, &count, sizeof(count)) > 0) {
  }
  return Reap(group, ready, capacity);
}

void FileRing::AddStats(FileIoStats* out) const {
  ++out->rings;
  out->submitted += submitted_.Get();
  out->completed += completed_.load(std::memory_order_relaxed);
  out->room_waits += room_waits_.load(std::memory_order_relaxed);
  out->multishot_accepts += accepted_.load(std::memory_order_relaxed);
  out->multishot_receives += received_.load(std::memory_order_relaxed);
  out->multishot_received_bytes += received_bytes_.load(std::memory_order_relaxed);
}

void ChooseFileEngine(const RuntimeOptions& options) {
  EngineState& state = Engine();
  std::string reason;
  bool rings = false;
  if (options.io_engine == "epoll") {
    reason = "io_engine is \"epoll\" (--weft_io_engine)";
  } else {
    const std::string refused = ProbeIoUring();
    if (refused.empty()) {
      rings = true;
      reason = options.io_engine == "io_uring" ? "io_engine is \"io_uring\""
                                               : "io_engine is \"auto\" and the kernel "
                                                 "accepts io_uring";
    } else {
      reason = "io_engine is \"" + options.io_engine + "\" but " + refused;
    }
  }
  state.entries.store(static_cast<unsigned>(options.io_uring_entries),
                      std::memory_order_relaxed);
  // Sockets go through the rings only when asked for: on this kernel the
  // ring engine, multishot receives and all, is only level with epoll on W11
  // (docs/io.md, "Measured: epoll against io_uring for sockets").
  const bool socket_rings = rings && options.io_engine == "io_uring";
  state.rings.store(rings, std::memory_order_release);
  state.socket_rings.store(socket_rings, std::memory_order_release);
  state.fallbacks.store(0, std::memory_order_relaxed);
  LockGuard<Mutex> lock(state.mutex);
  state.engine = rings ? "io_uring" : "blocking pool";
  state.socket_engine = socket_rings ? "io_uring" : "epoll";
  state.reason = reason;
  state.failure_logged = false;
  const std::string line = "weft: file I/O engine: " + state.engine + " (" + reason +
                           "); sockets use " + state.socket_engine + "\n";
  if (line != state.logged) {
    state.logged = line;
    std::fputs(line.c_str(), stderr);
  }
}

bool FileRingsEnabled() { return Engine().rings.load(std::memory_order_acquire); }

bool SocketRingsEnabled() {
  return Engine().socket_rings.load(std::memory_order_acquire);
}

unsigned FileRingEntries() { return Engine().entries.load(std::memory_order_relaxed); }

void ReportRingCreationFailure(const std::string& why) {
  EngineState& state = Engine();
  LockGuard<Mutex> lock(state.mutex);
  if (state.failure_logged) return;
  state.failure_logged = true;
  state.reason +=
      "; a worker's ring failed (" + why + "), its calls use the blocking pool";
  std::fprintf(stderr,
               "weft: file I/O: creating a worker's io_uring failed (%s); that worker's "
               "file calls use the blocking pool\n",
               why.c_str());
}

void CountFileFallback() { Engine().fallbacks.fetch_add(1, std::memory_order_relaxed); }

void FillFileEngineStats(FileIoStats* out) {
  EngineState& state = Engine();
  out->fallbacks = state.fallbacks.load(std::memory_order_relaxed);
  LockGuard<Mutex> lock(state.mutex);
  out->engine = state.engine;
  out->socket_engine = state.socket_engine;
  out->reason = state.reason;
}

}  // namespace weft::detail
