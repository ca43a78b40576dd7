#include "runtime/scheduling_group/io_poller.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "runtime/detail/check.h"
#include "runtime/detail/libc.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {
namespace {

constexpr int kMaxEvents = 128;

// An edge in either direction also reports the conditions that end a wait in
// it: hang-up and error end both, the peer's shutdown ends a read.
constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

}  // namespace

IoPoller::IoPoller() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  WEFT_CHECK(epoll_fd_ >= 0) << "weft::io: epoll_create1 failed: " << std::strerror(errno)
                             << " (raise the limit on open files, ulimit -n)";
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  WEFT_CHECK(event_fd_ >= 0) << "weft::io: eventfd failed: " << std::strerror(errno)
                             << " (raise the limit on open files, ulimit -n)";
  epoll_event event{};
  event.events = EPOLLIN;  // level-triggered: drained by the poll that sees it
  event.data.u64 = kInterruptToken;
  WEFT_CHECK(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &event) == 0)
      << "weft::io: registering the poller's eventfd failed: " << std::strerror(errno);
}

IoPoller::~IoPoller() {
  Libc().close(event_fd_);
  Libc().close(epoll_fd_);
}

int IoPoller::Register(int fd, std::uint32_t generation) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  event.data.u64 = (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    if (errno != EEXIST) return errno;
    // The same open file was registered under this number before (it was
    // closed behind weft's back while a duplicate kept it open): re-key it.
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0) return errno;
    return 0;
  }
  registrations_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

int IoPoller::AddCompletionSource(int event_fd, CompletionSource* source) {
  const std::size_t index = source_count_.fetch_add(1, std::memory_order_relaxed);
  WEFT_CHECK(index < kMaxCompletionSources)
      << "weft: more than " << kMaxCompletionSources
      << " completion sources in one scheduling group";
  sources_[index].store(source, std::memory_order_release);
  epoll_event event{};
  event.events = EPOLLIN;  // level-triggered: drained by the source when it reaps
  event.data.u64 = (std::uint64_t{index} << 32) | kSourceMark;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd, &event) != 0) {
    const int error = errno;
    sources_[index].store(nullptr, std::memory_order_release);
    return error;
  }
  registrations_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

void IoPoller::Unregister(int fd) {
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) == 0) {
    registrations_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void IoPoller::MoveRegistrationsTo(IoPoller& other) {
  struct Move {
    IoPoller* from;
    IoPoller* to;
  } move{this, &other};
  ForEachDescriptorSlot(
      [](int fd, DescriptorState& slot, void* context) {
        const auto& m = *static_cast<Move*>(context);
        slot.lock.lock();
        if (slot.poller == m.from) {
          const std::uint64_t word = slot.word.load(std::memory_order_relaxed);
          slot.poller = nullptr;
          if ((word & DescriptorState::kOpen) != 0 &&
              m.to->Register(fd, DescriptorState::GenerationOf(word)) == 0) {
            slot.poller = m.to;
          }
          // A descriptor the other instance refuses (closed behind weft's back)
          // is re-registered by its next call that has to wait.
          m.from->Unregister(fd);
        }
        slot.lock.unlock();
      },
      &move);
}

std::size_t IoPoller::Poll(int timeout_ms, SchedulingGroup* group, FiberEntity** ready,
                           std::size_t capacity) {
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0) {
    WEFT_CHECK(errno == EINTR) << "weft::io: epoll_wait failed: " << std::strerror(errno);
    return 0;
  }
  std::size_t stored = 0;
  auto deliver = [&](Waiter* waiter) {
    FiberEntity* fiber = waiter->fiber;
    if (fiber == nullptr) {
      WaitQueue::Wake(waiter);
    } else if (fiber->group == group && stored < capacity) {
      fiber->state.store(FiberState::kReady, std::memory_order_relaxed);
      ready[stored++] = fiber;
    } else {
      ReadyFiber(fiber);
    }
  };
  for (int i = 0; i < n; ++i) {
    const std::uint64_t data = events[i].data.u64;
    if (data == kInterruptToken) {
      std::uint64_t count;
      while (Libc().read(event_fd_, &count, sizeof(count)) > 0) {
      }
      continue;
    }
    if (static_cast<std::uint32_t>(data) == kSourceMark) {
      CompletionSource* source = sources_[data >> 32].load(std::memory_order_acquire);
      if (source != nullptr) {
        stored += source->OnSignal(group, ready + stored, capacity - stored);
      }
      continue;
    }
    const int fd = static_cast<int>(data & 0xffffffffu);
    const auto generation = static_cast<std::uint32_t>(data >> 32);
    DescriptorState* slot = FindDescriptorSlot(fd);
    if (slot == nullptr) continue;
    const bool direction_ready[2] = {(events[i].events & kReadEvents) != 0,
                                     (events[i].events & kWriteEvents) != 0};
    Waiter* woken[2] = {nullptr, nullptr};
    slot->lock.lock();
    const std::uint64_t word = slot->word.load(std::memory_order_relaxed);
    // An event this instance had harvested before the descriptor left it (to
    // another poller, or to the rings) is not ours to deliver.
    if (DescriptorState::GenerationOf(word) == generation &&
        (word & DescriptorState::kOpen) != 0 && slot->poller == this) {
      for (int d = 0; d != 2; ++d) {
        if (!direction_ready[d]) continue;
        slot->edges[d].fetch_add(1, std::memory_order_relaxed);
        woken[d] = slot->waiters[d].PopFront();
      }
    }
    slot->lock.unlock();
    for (Waiter* waiter : woken) {
      if (waiter != nullptr) deliver(waiter);
    }
  }
  return stored;
}

void IoPoller::Interrupt() {
  const std::uint64_t one = 1;
  // A full counter (it never is: every poll drains it) would fail with EAGAIN,
  // and a poll would be due anyway.
  [[maybe_unused]] const ssize_t written = Libc().write(event_fd_, &one, sizeof(one));
}

IoPoller& FallbackPoller() {
  static IoPoller* poller = [] {
    auto* p = new IoPoller;
    std::thread([p] {
      // Named, or it would carry the name of the thread that made it (often a
      // worker's, which tools and tests take for a worker).
      pthread_setname_np(pthread_self(), "weft-poller");
      p->TryTakeSleeperToken();  // the only thread that ever polls it
      for (;;) p->Poll(-1, nullptr, nullptr, 0);
    }).detach();
    return p;
  }();
  return *poller;
}

}  // namespace weft::detail
