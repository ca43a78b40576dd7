// Descriptors of runtime/io/fd.h: opening, accept, connect, the readiness
// waits and Close. The reads and writes are in fd_transfer.cc.
#include "runtime/io/fd.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "runtime/detail/errno.h"
#include "runtime/detail/libc.h"
#include "runtime/io/detail/accept_stream.h"
#include "runtime/io/detail/descriptor_use.h"
#include "runtime/io/detail/hooked_calls.h"
#include "runtime/io/detail/receive_stream.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/scheduling_group/io_poller.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/this_fiber.h"

namespace weft::io {
namespace {

using detail::CancelWaitersLocked;
using detail::DescriptorState;
using detail::FileRing;
using detail::FinishClose;
using detail::IoDirection;
using detail::Libc;
using detail::OpenSlot;
using detail::Waiter;
using detail::WaitQueue;
using detail::WouldBlock;
using Use = detail::DescriptorUse;

// After a probe found the descriptor not ready for `events`: waits for an
// edge, or with the io_uring socket engine for a poll request in the ring.
// 0 (look again) or an errno.
int WaitForReadiness(Use& use, short events, IoDirection direction, Deadline deadline) {
  FileRing* ring = use.Ring();
  if (ring == nullptr) return use.WaitForEdge(direction, deadline);
  const ssize_t result = use.OnRing(ring, direction, deadline, [&](io_uring_sqe* sqe) {
    io_uring_prep_poll_add(sqe, use.fd(), static_cast<unsigned>(events));
  });
  if (result >= 0 || result == Use::kRetry) return 0;
  return static_cast<int>(-result);
}

// Waits until poll(2) reports any of `events` on the descriptor.
int WaitFor(int fd, short events, IoDirection direction, Deadline deadline) {
  Use use(fd);
  if (!use.ok()) return -1;
  for (;;) {
    use.Snapshot(direction);
    if (direction == IoDirection::kRead) {
      // Bytes a receive stream holds are readable; while it is armed the
      // socket shows none (its request takes them), so its edges are waited
      // for instead.
      char byte;
      const iovec one{&byte, 1};
      bool armed = false;
      if (detail::TakeReceived(use.slot(), use.generation(), &one, 1, MSG_PEEK, &armed) !=
          0) {
        use.PassOn(direction);
        return 0;
      }
      if (armed) {
        if (const int wait = use.WaitForEdge(direction, deadline,
                                             !detail::WaitsInRings(use.is_socket()))) {
          if (wait == ECANCELED)
            detail::AwaitDetachedStreams(use.slot(), use.generation());
          detail::SetErrno(wait);
          return -1;
        }
        continue;
      }
    }
    pollfd probe{fd, events, 0};
    const int ready = Libc().poll(&probe, 1, 0);
    if (ready > 0 || !use.pollable()) {
      // Waiting did not consume anything: the next waiter looks too.
      use.PassOn(direction);
      return 0;
    }
    if (ready < 0 && detail::Errno() != EINTR) return -1;
    if (const int wait = WaitForReadiness(use, events, direction, deadline)) {
      detail::SetErrno(wait);
      return -1;
    }
  }
}

}  // namespace

int Socket(int domain, int type, int protocol) {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -1;
  if (const int error = OpenSlot(fd, detail::DescriptorSlot(fd), /*is_socket=*/true,
                                 /*pollable=*/true, /*known_new=*/true)) {
    Libc().close(fd);
    detail::SetErrno(error);
    return -1;
  }
  return fd;
}

namespace {

// The peer's address of a connection the listener's accept stream accepted
// (a multishot accept does not say it): what accept(2) would have written.
// A connection reset since has none; the address is then AF_UNSPEC.
void PeerAddress(int fd, sockaddr* addr, socklen_t* len) {
  if (addr == nullptr || len == nullptr) return;
  const socklen_t room = *len;
  if (getpeername(fd, addr, len) == 0) return;
  std::memset(addr, 0, std::min<std::size_t>(room, sizeof(sockaddr_storage)));
  *len = std::min<socklen_t>(room, sizeof(sa_family_t));
}

// accept(2)'s loop: a connection the listener's accept stream holds, else the
// system call; on EAGAIN, with the io_uring socket engine, a multishot accept
// stands in the fiber's ring and the call waits for its next connection (or
// one accept request, where multishot cannot be used); otherwise the call
// waits for an edge.
int AcceptOne(int listen_fd, sockaddr* addr, socklen_t* len, Deadline deadline) {
  Use use(listen_fd);
  if (!use.ok()) return -1;
  // Waits for the accept stream's next edge; a wait that gives up leaves the
  // stream standing only if other calls wait.
  auto wait_for_stream = [&](bool through_poller) {
    const int wait = use.WaitForEdge(IoDirection::kRead, deadline, through_poller);
    if (wait == ETIMEDOUT) detail::StopAcceptStreamIfIdle(use.slot(), use.generation());
    return wait;
  };
  // A wait that ended in an error; one that Close() cancelled returns once
  // the listener's stream no longer stands (accept_stream.h).
  auto fail = [&](int error) {
    if (error == ECANCELED) detail::AwaitDetachedStreams(use.slot(), use.generation());
    detail::SetErrno(error);
    return -1;
  };
  for (;;) {
    use.Snapshot(IoDirection::kRead);
    bool stands = false;
    if (const int fd = detail::TakeAccepted(use.slot(), use.generation(), &stands);
        fd >= 0) {
      use.PassOn(IoDirection::kRead);
      PeerAddress(fd, addr, len);
      return fd;
    }
    if (stands) {
      // The multishot accept takes whatever the backlog holds; its next
      // connection comes as an edge.
      if (const int wait = wait_for_stream(!detail::WaitsInRings(use.is_socket()))) {
        return fail(wait);
      }
      continue;
    }
    if (const int fd = Libc().accept4(listen_fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        fd >= 0) {
      use.PassOn(IoDirection::kRead);
      return fd;
    }
    const int error = detail::Errno();
    if (error == EINTR) continue;
    if (!WouldBlock(error) || !use.pollable()) {
      use.PassOn(IoDirection::kRead);
      detail::SetErrno(error);
      return -1;
    }
    int wait = 0;
    if (FileRing* ring = use.Ring()) {
      switch (detail::ArmAcceptStream(use.slot(), use.generation(), listen_fd, ring)) {
        case detail::ArmResult::kWait:
          wait = wait_for_stream(/*through_poller=*/false);
          break;
        case detail::ArmResult::kClosed:
          wait = ECANCELED;
          break;
        case detail::ArmResult::kOneShot: {
          const ssize_t fd =
              use.OnRing(ring, IoDirection::kRead, deadline, [&](io_uring_sqe* sqe) {
                io_uring_prep_accept(sqe, listen_fd, addr, len,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
              });
          if (fd >= 0) {
            use.PassOn(IoDirection::kRead);
            return static_cast<int>(fd);
          }
          if (fd != Use::kRetry) wait = static_cast<int>(-fd);
          break;
        }
      }
    } else {
      wait = use.WaitForEdge(IoDirection::kRead, deadline);
    }
    if (wait != 0) return fail(wait);
  }
}

}  // namespace

int Accept(int listen_fd, sockaddr* addr, socklen_t* len, Deadline deadline) {
  const int accepted = AcceptOne(listen_fd, addr, len, deadline);
  if (accepted < 0) return -1;
  if (const int error =
          OpenSlot(accepted, detail::DescriptorSlot(accepted),
                   /*is_socket=*/true, /*pollable=*/true, /*known_new=*/true)) {
    Libc().close(accepted);
    detail::SetErrno(error);
    return -1;
  }
  return accepted;
}

int Connect(int fd, const sockaddr* addr, socklen_t len, Deadline deadline) {
  Use use(fd);
  if (!use.ok()) return -1;
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    if (Libc().connect(fd, addr, len) == 0) return 0;
    const int error = detail::Errno();
    if (error == EAGAIN && addr != nullptr && addr->sa_family == AF_UNIX) {
      // A Unix-domain listener's backlog is full; there is no edge to wait
      // for, so try again a little later.
      if (deadline.HasPassed()) {
        detail::SetErrno(ETIMEDOUT);
        return -1;
      }
      const auto now = std::chrono::steady_clock::now();
      this_fiber::SleepUntil(std::min(now + backoff, deadline.TimePoint()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(64));
      continue;
    }
    if (error != EINPROGRESS && error != EINTR && error != EALREADY) {
      detail::SetErrno(error);
      return -1;
    }
    break;
  }
  // In progress: writable means done, one way or the other.
  for (;;) {
    use.Snapshot(IoDirection::kWrite);
    pollfd probe{fd, POLLOUT, 0};
    const int ready = Libc().poll(&probe, 1, 0);
    if (ready > 0) {
      int so_error = 0;
      socklen_t so_len = sizeof(so_error);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0) return -1;
      if (so_error != 0) {
        detail::SetErrno(so_error);
        return -1;
      }
      return 0;
    }
    if (ready < 0 && detail::Errno() != EINTR) return -1;
    if (const int wait = WaitForReadiness(use, POLLOUT, IoDirection::kWrite, deadline)) {
      detail::SetErrno(wait);
      return -1;
    }
  }
}

int WaitReadable(int fd, Deadline deadline) {
  return WaitFor(fd, POLLIN | POLLRDHUP, IoDirection::kRead, deadline);
}

int WaitWritable(int fd, Deadline deadline) {
  return WaitFor(fd, POLLOUT, IoDirection::kWrite, deadline);
}

int Close(int fd) {
  DescriptorState* slot = detail::FindDescriptorSlot(fd);
  std::uint64_t word = slot != nullptr ? slot->word.load(std::memory_order_acquire) : 0;
  for (;;) {
    if ((word & DescriptorState::kOpen) == 0) {
      // Not weft's: close it as it is.
      if (Libc().close(fd) != 0 && detail::Errno() != EINTR) return -1;
      return 0;
    }
    if ((word & DescriptorState::kClosing) != 0) {
      detail::SetErrno(EBADF);
      return -1;
    }
    if (slot->word.compare_exchange_weak(word, word | DescriptorState::kClosing,
                                         std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      break;
    }
  }
  const std::uint32_t generation = DescriptorState::GenerationOf(word);
  slot->lock.lock();
  Waiter* cancelled = nullptr;
  if (DescriptorState::GenerationOf(slot->word.load(std::memory_order_relaxed)) ==
      generation) {
    cancelled = CancelWaitersLocked(*slot);
  }
  slot->lock.unlock();
  WaitQueue::WakeAll(cancelled);
  if ((word & DescriptorState::kUsersMask) == 0) {
    FinishClose(fd, *slot, generation);
  } else {
    // A listener's multishot accept holds the socket until its cancellation
    // completes: Close() returns after that, as close(2) would.
    detail::AwaitDetachedStreams(*slot, generation);
  }
  return 0;
}

}  // namespace weft::io

namespace weft::detail {

int AdoptDescriptor(int fd) {
  DescriptorState& slot = DescriptorSlot(fd);
  if ((slot.word.load(std::memory_order_acquire) & DescriptorState::kOpen) != 0) return 0;
  return OpenExisting(fd, slot);
}

}  // namespace weft::detail
