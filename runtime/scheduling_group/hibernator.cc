#include "runtime/scheduling_group/hibernator.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "runtime/detail/check.h"
#include "runtime/detail/mutex.h"
#include "runtime/detail/sanitizers.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/fiber_entity.h"

#ifdef WEFT_TSAN
// ThreadSanitizer's dynamic annotations (its runtime defines them).
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

namespace weft::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Records a pass looks at between two looks at pending faults.
constexpr std::size_t kRecordsBetweenFaults = 256;
// The shortest time between two passes.
constexpr std::chrono::milliseconds kMinPeriod{10};

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// The hibernator reads a fiber's state and park count while the fiber's
// owners may be rewriting them (or constructing a new fiber in the same place):
// the values are only a hint, confirmed once the stack is write-protected,
// when nothing can change them. ThreadSanitizer cannot see a write protection.
class HintReads {
 public:
  HintReads() {
#ifdef WEFT_TSAN
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
  }
  ~HintReads() {
#ifdef WEFT_TSAN
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
  }
  HintReads(const HintReads&) = delete;
  HintReads& operator=(const HintReads&) = delete;
};

int OpenUserfaultfd(std::string* why) {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) {
    const int syscall_error = errno;
    const int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
      fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
      close(dev);
    }
    if (fd < 0) {
      *why = std::string("userfaultfd() failed (") + std::strerror(syscall_error) +
             ") and /dev/userfaultfd is not usable: run as root, set "
             "vm.unprivileged_userfaultfd=1, or give the user read-write access to "
             "/dev/userfaultfd";
      return -1;
    }
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    *why =
        std::string("this kernel's userfaultfd cannot write-protect anonymous memory (") +
        std::strerror(errno) + "); hibernation needs Linux 5.7 or later";
    close(fd);
    return -1;
  }
  return fd;
}

class Hibernator {
 public:
  Hibernator(int uffd, int wake_fd, std::chrono::milliseconds after)
      : uffd_(uffd), wake_fd_(wake_fd), after_(after) {}

  ~Hibernator() {
    close(uffd_);
    close(wake_fd_);
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      LockGuard<Mutex> lock(mu_);
      stopping_ = true;
    }
    Poke();
    thread_.join();
  }

  std::size_t RequestPass(std::chrono::milliseconds min_parked) {
    std::uint64_t ticket;
    {
      LockGuard<Mutex> lock(mu_);
      ticket = ++requested_;
      request_threshold_ = min_parked;
    }
    Poke();
    LockGuard<Mutex> lock(mu_);
    while (completed_ < ticket) done_.wait(mu_);
    return last_result_;
  }

  void WakeForDebugger(StackRecord* record) { Wake(record, /*for_debugger=*/true); }

  void FillStats(HibernationStats* stats) const {
    stats->enabled = true;
    stats->hibernated_now = hibernated_now_.load(std::memory_order_relaxed);
    stats->saved_bytes_now = saved_bytes_now_.load(std::memory_order_relaxed);
    stats->hibernations = hibernations_.load(std::memory_order_relaxed);
    stats->wakes = wakes_.load(std::memory_order_relaxed);
    stats->raced = raced_.load(std::memory_order_relaxed);
  }

 private:
  void Poke() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }

  void Run() {
    pthread_setname_np(pthread_self(), "weft-hibernate");
    const auto period = std::max(after_, kMinPeriod);
    auto next_pass = Clock::now() + period;
    for (;;) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_pass - Clock::now());
      pollfd fds[2] = {{uffd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count() + 1)));
      ServeFaults();
      if (fds[1].revents & POLLIN) {
        std::uint64_t count;
        [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
      }
      std::uint64_t ticket = 0;
      std::chrono::milliseconds threshold = after_;
      {
        LockGuard<Mutex> lock(mu_);
        if (stopping_) break;
        if (requested_ > completed_) {
          ticket = requested_;
          threshold = request_threshold_;
        }
      }
      if (ticket == 0 && Clock::now() < next_pass) continue;
      const std::size_t hibernated = Pass(threshold);
      next_pass = Clock::now() + period;
      if (ticket != 0) {
        LockGuard<Mutex> lock(mu_);
        completed_ = ticket;
        last_result_ = hibernated;
        done_.notify_all();
      }
    }
    WakeAll();
    FreeCopies();
  }

  // Serves every fault pending now.
  void ServeFaults() {
    uffd_msg msgs[16];
    for (;;) {
      const ssize_t n = read(uffd_, msgs, sizeof(msgs));
      if (n <= 0) break;
      for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof(uffd_msg); ++i) {
        if (msgs[i].event == UFFD_EVENT_PAGEFAULT) Serve(msgs[i]);
      }
    }
    FreeCopies();
  }

  void Serve(const uffd_msg& msg) {
    const std::size_t page_size = PageSize();
    char* page = AlignDown(reinterpret_cast<char*>(msg.arg.pagefault.address), page_size);
    StackRecord* record = FindHibernatableStack(page);
    if (record != nullptr &&
        record->sleep.load(std::memory_order_relaxed) == StackSleep::kHibernated) {
      Wake(record);
      return;
    }
    // A fault this thread already answered (the stack was woken for an
    // earlier one), or one on a page it never gave back: let the toucher go.
    if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
      uffdio_writeprotect wp{{reinterpret_cast<std::uintptr_t>(page), page_size}, 0};
      ioctl(uffd_, UFFDIO_WRITEPROTECT, &wp);
      return;
    }
    MapZeroPages(uffd_, page, page_size);
  }

  // Puts a hibernated stack's bytes back; wakes whoever waits on its pages.
  // Runs on the hibernator's thread, or on a debugger's behalf while every
  // thread of the process is stopped (weft_debug_wake_hibernated): then it
  // neither allocates nor frees, as a stopped thread may hold malloc's locks.
  void Wake(StackRecord* record, bool for_debugger = false) {
    char* top = record->low + record->size;
    const std::size_t page_size = PageSize();
    char* first = AlignDown(record->saved_from, page_size);
    const std::size_t gap = static_cast<std::size_t>(record->saved_from - first);
    const std::size_t saved_length = static_cast<std::size_t>(top - record->saved_from);
    // Counted first: the copy lets the toucher go on, and it may look at them.
    hibernated_now_.fetch_sub(1, std::memory_order_relaxed);
    saved_bytes_now_.fetch_sub(saved_length, std::memory_order_relaxed);
    wakes_.fetch_add(1, std::memory_order_relaxed);
    // The first page, zeros below the saved bytes, from a page here; the rest
    // straight from the copy. A debugger's wake may interrupt this thread in
    // the middle of one: it has a page of its own.
    char* page = for_debugger ? debugger_page_.get() : page_.get();
    const std::size_t head = std::min(page_size - gap, saved_length);
    std::memset(page, 0, gap);
    std::memcpy(page + gap, record->saved, head);
    std::memset(page + gap + head, 0, page_size - gap - head);
    PlacePages(first, page, page_size);
    if (first + page_size < top) {
      PlacePages(first + page_size, record->saved + head,
                 static_cast<std::size_t>(top - (first + page_size)));
    }
    // The zero page below, so that the woken fiber's deeper calls take
    // ordinary faults: were they to come here, a wake storm would have each
    // woken fiber wait behind the wakes still to serve, holding its page.
    if (first > record->low) {
      MapZeroPages(uffd_, record->low, static_cast<std::size_t>(first - record->low));
    }
    if (for_debugger) {
      ToFree(record->saved);
    } else {
      std::free(record->saved);
    }
    record->saved = nullptr;
    record->saved_from = nullptr;
    record->seen_fiber = nullptr;
    record->sleep.store(StackSleep::kAwake, std::memory_order_release);
  }

  // Maps `length` bytes (whole pages) from `source` at `destination`, waking
  // whoever waits on them.
  void PlacePages(char* destination, const char* source, std::size_t length) {
    std::size_t done = 0;
    while (done < length) {
      uffdio_copy copy{};
      copy.dst = reinterpret_cast<std::uintptr_t>(destination + done);
      copy.src = reinterpret_cast<std::uintptr_t>(source + done);
      copy.len = length - done;
      const int rc = ioctl(uffd_, UFFDIO_COPY, &copy);
      if (copy.copy > 0) done += static_cast<std::size_t>(copy.copy);
      if (rc == 0) break;
      if (errno == EAGAIN) continue;
      // EEXIST cannot happen (no one maps these pages but this code); any
      // other failure would lose the fiber's frames.
      WEFT_CHECK(errno == EEXIST)
          << "weft: cannot put a hibernated fiber's stack back: " << std::strerror(errno);
      done += PageSize();
    }
  }

  // Copies put back for a debugger are freed by the hibernator's thread
  // (FreeCopies), linked through their first bytes meanwhile.
  void ToFree(char* copy) {
    char* head = to_free_.load(std::memory_order_relaxed);
    do {
      std::memcpy(copy, &head, sizeof(head));
    } while (!to_free_.compare_exchange_weak(head, copy, std::memory_order_release,
                                             std::memory_order_relaxed));
  }

  void FreeCopies() {
    char* copy = to_free_.exchange(nullptr, std::memory_order_acquire);
    while (copy != nullptr) {
      char* next;
      std::memcpy(&next, copy, sizeof(next));
      std::free(copy);
      copy = next;
    }
  }

  void WakeAll() {
    const std::size_t chunks = StackRecordChunkCount();
    for (std::size_t c = 0; c < chunks; ++c) {
      StackRecord* chunk = StackRecordChunk(c);
      for (std::size_t i = 0; i < kRecordsPerChunk; ++i) {
        if (chunk[i].sleep.load(std::memory_order_relaxed) == StackSleep::kHibernated) {
          Wake(&chunk[i]);
        }
      }
    }
    ServeFaults();
  }

  std::size_t Pass(std::chrono::milliseconds threshold) {
    const std::int64_t now = NowMs();
    std::size_t hibernated = 0;
    std::size_t looked = 0;
    const std::size_t chunks = StackRecordChunkCount();
    for (std::size_t c = 0; c < chunks; ++c) {
      StackRecord* chunk = StackRecordChunk(c);
      for (std::size_t i = 0; i < kRecordsPerChunk; ++i) {
        if (++looked % kRecordsBetweenFaults == 0) ServeFaults();
        StackRecord* record = &chunk[i];
        if (!record->hibernatable.load(std::memory_order_acquire) ||
            record->sleep.load(std::memory_order_relaxed) != StackSleep::kAwake) {
          continue;
        }
        FiberEntity* fiber = record->fiber.load(std::memory_order_acquire);
        FiberState state = FiberState::kExited;
        std::uint32_t parks = 0;
        if (fiber != nullptr) {
          HintReads hint;
          state = fiber->state.load(std::memory_order_acquire);
          parks = fiber->parks.load(std::memory_order_relaxed);
        }
        if (state != FiberState::kParked) {
          record->seen_fiber = nullptr;
          continue;
        }
        if (record->seen_fiber != fiber || record->seen_parks != parks) {
          record->seen_fiber = fiber;
          record->seen_parks = parks;
          record->seen_since_ms = now;
          if (threshold.count() != 0) continue;
        }
        if (now - record->seen_since_ms < threshold.count()) continue;
        if (Hibernate(record, fiber, parks)) ++hibernated;
      }
    }
    return hibernated;
  }

  // Copies a parked fiber's bytes in use. Under the sanitizers the kernel
  // copies them: the sanitizers would see this thread read another context's
  // frames and redzones.
  bool CopyStack(char* to, const char* from, std::size_t length) {
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
    iovec local{to, length};
    iovec remote{const_cast<char*>(from), length};
    return process_vm_readv(pid_, &local, 1, &remote, 1, 0) ==
           static_cast<ssize_t>(length);
#else
    std::memcpy(to, from, length);
    return true;
#endif
  }

  bool WriteProtect(StackRecord* record, bool on) {
    uffdio_writeprotect wp{};
    wp.range.start = reinterpret_cast<std::uintptr_t>(record->low);
    wp.range.len = record->size;
    wp.mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
    return ioctl(uffd_, UFFDIO_WRITEPROTECT, &wp) == 0;
  }

  bool Hibernate(StackRecord* record, FiberEntity* fiber, std::uint32_t parks) {
    if (!WriteProtect(record, true)) return false;
    record->sleep.store(StackSleep::kHibernating, std::memory_order_relaxed);
    char* top = record->low + record->size;
    char* sp = nullptr;
    bool still_parked;
    {
      HintReads hint;
      still_parked =
          record->fiber.load(std::memory_order_acquire) == fiber &&
          fiber->state.load(std::memory_order_acquire) == FiberState::kParked &&
          fiber->parks.load(std::memory_order_relaxed) == parks;
      if (still_parked) sp = static_cast<char*>(fiber->context.fctx);
    }
    if (!still_parked || sp < record->low || sp >= top) {
      // Woken (or, impossibly, parked with its stack pointer elsewhere) before
      // the protection took hold: leave it as it is.
      raced_.fetch_add(1, std::memory_order_relaxed);
      record->sleep.store(StackSleep::kAwake, std::memory_order_relaxed);
      WriteProtect(record, false);
      return false;
    }
    char* from = AlignDown(sp, 16);
    const std::size_t length = static_cast<std::size_t>(top - from);
    char* saved = static_cast<char*>(std::malloc(length));
    if (saved == nullptr || !CopyStack(saved, from, length)) {
      std::free(saved);
      record->sleep.store(StackSleep::kAwake, std::memory_order_relaxed);
      WriteProtect(record, false);
      return false;
    }
    record->saved = saved;
    record->saved_from = from;
    // The pages below the copy get the zero page again when the fiber wakes
    // (Wake), a call that fibers which never wake do not pay for.
    madvise(record->low, record->size, MADV_DONTNEED);
    hibernated_now_.fetch_add(1, std::memory_order_relaxed);
    saved_bytes_now_.fetch_add(length, std::memory_order_relaxed);
    hibernations_.fetch_add(1, std::memory_order_relaxed);
    record->sleep.store(StackSleep::kHibernated, std::memory_order_release);
    return true;
  }

  const int uffd_;
  const int wake_fd_;
  const std::chrono::milliseconds after_;
  std::thread thread_;
  const std::unique_ptr<char[]> page_{new char[PageSize()]};
  const std::unique_ptr<char[]> debugger_page_{new char[PageSize()]};
  std::atomic<char*> to_free_{nullptr};
  const pid_t pid_ = getpid();

  Mutex mu_;
  std::condition_variable_any done_;
  bool stopping_ WEFT_GUARDED_BY(mu_) = false;
  std::uint64_t requested_ WEFT_GUARDED_BY(mu_) = 0;
  std::uint64_t completed_ WEFT_GUARDED_BY(mu_) = 0;
  std::chrono::milliseconds request_threshold_ WEFT_GUARDED_BY(mu_){0};
  std::size_t last_result_ WEFT_GUARDED_BY(mu_) = 0;

  std::atomic<std::uint64_t> hibernated_now_{0};
  std::atomic<std::uint64_t> saved_bytes_now_{0};
  std::atomic<std::uint64_t> hibernations_{0};
  std::atomic<std::uint64_t> wakes_{0};
  std::atomic<std::uint64_t> raced_{0};
};

Mutex& LifecycleMutex() {
  static Mutex* mutex = new Mutex;
  return *mutex;
}
std::unique_ptr<Hibernator> hibernator WEFT_GUARDED_BY(LifecycleMutex());
// The same, for a debugger, which must not take locks that stopped threads
// may hold.
std::atomic<Hibernator*> hibernator_for_debugger{nullptr};

}  // namespace

bool HibernationSupported(std::string* why) {
  const int fd = OpenUserfaultfd(why);
  if (fd < 0) return false;
  close(fd);
  return true;
}

bool StartHibernation(std::chrono::milliseconds after, std::string* why) {
  LockGuard<Mutex> lock(LifecycleMutex());
  WEFT_CHECK(hibernator == nullptr) << "the hibernator is already running";
  const int uffd = OpenUserfaultfd(why);
  if (uffd < 0) return false;
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    *why = std::string("eventfd: ") + std::strerror(errno);
    close(uffd);
    return false;
  }
  hibernator = std::make_unique<Hibernator>(uffd, wake_fd, after);
  SetStackHibernationFd(uffd);
  hibernator->Start();
  hibernator_for_debugger.store(hibernator.get(), std::memory_order_release);
  return true;
}

void StopHibernation() {
  LockGuard<Mutex> lock(LifecycleMutex());
  if (hibernator == nullptr) return;
  hibernator_for_debugger.store(nullptr, std::memory_order_release);
  hibernator->Stop();
  SetStackHibernationFd(-1);
  hibernator.reset();  // closes the userfaultfd, which unregisters every stack
}

std::size_t HibernateParkedFibers(std::chrono::milliseconds min_parked) {
  LockGuard<Mutex> lock(LifecycleMutex());
  if (hibernator == nullptr) return 0;
  return hibernator->RequestPass(min_parked);
}

void FillHibernationStats(HibernationStats* stats) {
  *stats = HibernationStats{};
  LockGuard<Mutex> lock(LifecycleMutex());
  if (hibernator != nullptr) hibernator->FillStats(stats);
}

}  // namespace weft::detail

// For debug/weft.py: puts the stack of a hibernated fiber back so that the
// debugger can read its frames, as a touch would, from the thread the debugger
// calls this on while every other thread is stopped. Returns 0 when the stack
// is (now) awake, -1 when there is no hibernator or `record` is not the record
// of a hibernated stack.
extern "C" __attribute__((used, noinline)) int weft_debug_wake_hibernated(void* record) {
  using weft::detail::StackRecord;
  using weft::detail::StackSleep;
  weft::detail::Hibernator* h =
      weft::detail::hibernator_for_debugger.load(std::memory_order_acquire);
  auto* stack = static_cast<StackRecord*>(record);
  if (h == nullptr || stack == nullptr) return -1;
  const StackSleep sleep = stack->sleep.load(std::memory_order_acquire);
  if (sleep == StackSleep::kAwake) return 0;
  if (sleep != StackSleep::kHibernated) return -1;
  h->WakeForDebugger(stack);
  return 0;
}
