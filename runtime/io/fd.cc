#include "runtime/io/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "runtime/detail/check.h"
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
using detail::DirectionIndex;
using detail::FileRing;
using detail::FinishClose;
using detail::IoDirection;
using detail::Libc;
using detail::OpenSlot;
using detail::Waiter;
using detail::WaitQueue;
using detail::WouldBlock;
using Use = detail::DescriptorUse;

// A call with no io_uring form: it always waits through a poller.
struct NoRingForm {};

// The retry loop of a call that transfers data at most once: `op` is the
// system call; on EAGAIN the call waits for an edge and tries again, or with
// the io_uring socket engine has the ring make the call, as
// `prepare(sqe)` prepares it, once the socket is ready.
template <class Op, class Prepare = NoRingForm>
ssize_t Transfer(int fd, IoDirection direction, Deadline deadline, bool dont_wait, Op op,
                 Prepare prepare = {}) {
  Use use(fd);
  if (!use.ok()) return -1;
  for (;;) {
    use.Snapshot(direction);
    const ssize_t result = op(use);
    if (result >= 0) {
      use.PassOn(direction);
      return result;
    }
    const int error = detail::Errno();
    if (error == EINTR) continue;
    if (!WouldBlock(error) || dont_wait || !use.pollable()) {
      use.PassOn(direction);
      detail::SetErrno(error);
      return -1;
    }
    if constexpr (!std::is_same_v<Prepare, NoRingForm>) {
      if (FileRing* ring = use.Ring()) {
        const ssize_t done = use.OnRing(ring, direction, deadline, prepare);
        if (done == Use::kRetry) continue;
        if (done >= 0) {
          use.PassOn(direction);
          return done;
        }
        detail::SetErrno(static_cast<int>(-done));
        return -1;
      }
    }
    if (const int wait = use.WaitForEdge(direction, deadline)) {
      detail::SetErrno(wait);
      return -1;
    }
  }
}

// Whether a SIGPIPE is pending for the calling thread or the process.
bool SigpipePending() {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

// write(2) or writev(2) on a descriptor that is not a socket (a pipe), where
// MSG_NOSIGNAL does not exist: SIGPIPE is blocked in the calling thread for
// the duration, and one this write raised is consumed before it is unblocked.
// The process's dispositions are never touched.
template <class Op>
ssize_t WithoutSigpipe(Op op) {
  sigset_t sigpipe, old_mask;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, &old_mask);
  const bool was_pending = SigpipePending();
  const ssize_t result = op();
  const int error = detail::Errno();
  if (result < 0 && error == EPIPE && !was_pending) {
    const timespec zero{0, 0};
    while (sigtimedwait(&sigpipe, nullptr, &zero) < 0 && detail::Errno() == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  detail::SetErrno(error);
  return result;
}

// The loop of a call that writes a whole buffer: `op(offset)` writes from
// `offset` on and returns the count or -1; done at `total`. With the io_uring
// socket engine, `prepare(sqe, offset)` prepares the same write for the ring.
template <class Op, class Prepare = NoRingForm>
ssize_t WriteAll(int fd, std::size_t total, Deadline deadline, bool dont_wait, Op op,
                 Prepare prepare = {}) {
  Use use(fd);
  if (!use.ok()) return -1;
  std::size_t done = 0;
  for (;;) {
    use.Snapshot(IoDirection::kWrite);
    const ssize_t result = op(use, done);
    if (result >= 0) {
      done += static_cast<std::size_t>(result);
      if (done >= total || dont_wait) {
        use.PassOn(IoDirection::kWrite);
        return static_cast<ssize_t>(done);
      }
      continue;
    }
    const int error = detail::Errno();
    if (error == EINTR) continue;
    if (!WouldBlock(error) || dont_wait || !use.pollable()) {
      use.PassOn(IoDirection::kWrite);
      if (done > 0) return static_cast<ssize_t>(done);
      detail::SetErrno(error);
      return -1;
    }
    if constexpr (!std::is_same_v<Prepare, NoRingForm>) {
      if (FileRing* ring = use.Ring()) {
        const ssize_t wrote = use.OnRing(ring, IoDirection::kWrite, deadline,
                                         [&](io_uring_sqe* sqe) { prepare(sqe, done); });
        if (wrote >= 0) done += static_cast<std::size_t>(wrote);
        if (wrote >= 0 || wrote == Use::kRetry) {
          if (done >= total) {
            use.PassOn(IoDirection::kWrite);
            return static_cast<ssize_t>(done);
          }
          continue;
        }
        if (done > 0) return static_cast<ssize_t>(done);
        detail::SetErrno(static_cast<int>(-wrote));
        return -1;
      }
    }
    if (const int wait = use.WaitForEdge(IoDirection::kWrite, deadline)) {
      if (done > 0) return static_cast<ssize_t>(done);
      detail::SetErrno(wait);
      return -1;
    }
  }
}

// The part of `iov` from byte `offset` on, in `storage` when it starts inside
// an element. Returns the element count.
int SkipIov(const iovec* iov, int iovcnt, std::size_t offset, std::vector<iovec>& storage,
            const iovec** out) {
  int i = 0;
  while (i < iovcnt && offset >= iov[i].iov_len) offset -= iov[i++].iov_len;
  if (offset == 0) {
    *out = iov + i;
    return iovcnt - i;
  }
  storage.assign(iov + i, iov + iovcnt);
  storage[0].iov_base = static_cast<char*>(storage[0].iov_base) + offset;
  storage[0].iov_len -= offset;
  *out = storage.data();
  return static_cast<int>(storage.size());
}

std::size_t IovTotal(const iovec* iov, int iovcnt) {
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  return total;
}

// Transfer for a read of the byte stream into `iov` with recv(2)'s `flags`:
// the bytes the connection's receive stream holds come first
// (receive_stream.h), and while the stream is armed the call waits for its
// edges instead of reading the socket; `on_taken()` runs when the call was
// served from the stream. With the io_uring socket engine a read that found
// the socket empty arms the stream when `may_arm`.
template <class Op, class Prepare, class OnTaken>
ssize_t Receive(int fd, const iovec* iov, int iovcnt, int flags, Deadline deadline,
                bool may_arm, Op op, Prepare prepare, OnTaken on_taken) {
  const bool dont_wait = (flags & MSG_DONTWAIT) != 0;
  if ((flags & (MSG_OOB | MSG_ERRQUEUE)) != 0 || IovTotal(iov, iovcnt) == 0) {
    // Queues of their own, or nothing to read: the socket answers.
    return Transfer(fd, IoDirection::kRead, deadline, dont_wait, op, prepare);
  }
  Use use(fd);
  if (!use.ok()) return -1;
  // A wait that ended in an error; one that Close() cancelled returns once
  // the connection's stream no longer stands.
  auto fail = [&](int error) {
    if (error == ECANCELED) detail::AwaitDetachedStreams(use.slot(), use.generation());
    detail::SetErrno(error);
    return ssize_t{-1};
  };
  for (;;) {
    use.Snapshot(IoDirection::kRead);
    bool armed = false;
    const ssize_t taken =
        detail::TakeReceived(use.slot(), use.generation(), iov, iovcnt, flags, &armed);
    if (taken != 0) {
      if (taken > 0) on_taken();
      use.PassOn(IoDirection::kRead);
      return taken;
    }
    if (armed) {
      if (dont_wait) return fail(EAGAIN);
      if (const int wait = use.WaitForEdge(IoDirection::kRead, deadline,
                                           !detail::WaitsInRings(use.is_socket()))) {
        return fail(wait);
      }
      continue;
    }
    // Closing: the bytes a stream held were dropped, so the socket's later
    // ones must not be read either.
    if (!detail::HoldsOpen(use.slot(), use.generation())) return fail(ECANCELED);
    const ssize_t result = op(use);
    if (result >= 0) {
      use.PassOn(IoDirection::kRead);
      return result;
    }
    const int error = detail::Errno();
    if (error == EINTR) continue;
    if (!WouldBlock(error) || dont_wait || !use.pollable()) {
      use.PassOn(IoDirection::kRead);
      detail::SetErrno(error);
      return -1;
    }
    int wait = 0;
    if (FileRing* ring = use.Ring()) {
      const detail::ArmResult arm =
          may_arm ? detail::ArmReceiveStream(use.slot(), use.generation(), fd, ring)
                  : detail::ArmResult::kOneShot;
      if (arm == detail::ArmResult::kWait) continue;  // take, or wait for its edge
      if (arm == detail::ArmResult::kClosed) return fail(ECANCELED);
      const ssize_t done = use.OnRing(ring, IoDirection::kRead, deadline, prepare);
      if (done == Use::kRetry) continue;
      if (done >= 0) {
        use.PassOn(IoDirection::kRead);
        return done;
      }
      wait = static_cast<int>(-done);
    } else {
      wait = use.WaitForEdge(IoDirection::kRead, deadline);
    }
    if (wait != 0) return fail(wait);
  }
}

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

ssize_t Read(int fd, void* buf, std::size_t n, Deadline deadline) {
  // The ring engine serves sockets only (Use::Ring), as recv.
  const iovec iov{buf, n};
  return Receive(
      fd, &iov, 1, 0, deadline, /*may_arm=*/true,
      [&](Use&) { return Libc().read(fd, buf, n); },
      [&](io_uring_sqe* sqe) {
        io_uring_prep_recv(sqe, fd, buf, detail::RingLength(n), 0);
      },
      [] {});
}

ssize_t ReadV(int fd, const iovec* iov, int iovcnt, Deadline deadline) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<std::size_t>(std::max(iovcnt, 0));
  return Receive(
      fd, iov, std::max(iovcnt, 0), 0, deadline, /*may_arm=*/true,
      [&](Use&) { return Libc().readv(fd, iov, iovcnt); },
      [&](io_uring_sqe* sqe) { io_uring_prep_recvmsg(sqe, fd, &msg, 0); }, [] {});
}

ssize_t Recv(int fd, void* buf, std::size_t n, int flags, Deadline deadline) {
  const bool dont_wait = (flags & MSG_DONTWAIT) != 0;
  if ((flags & MSG_WAITALL) == 0 || dont_wait) {
    const iovec iov{buf, n};
    return Receive(
        fd, &iov, 1, flags, deadline, /*may_arm=*/true,
        [&](Use&) { return Libc().recv(fd, buf, n, flags); },
        [&](io_uring_sqe* sqe) {
          io_uring_prep_recv(sqe, fd, buf, detail::RingLength(n), flags);
        },
        [] {});
  }
  // MSG_WAITALL on a non-blocking socket returns what is there: gather the rest.
  std::size_t done = 0;
  while (done < n) {
    char* at = static_cast<char*>(buf) + done;
    const iovec iov{at, n - done};
    const ssize_t got = Receive(
        fd, &iov, 1, flags & ~MSG_WAITALL, deadline, /*may_arm=*/true,
        [&](Use&) { return Libc().recv(fd, at, n - done, flags); },
        [&](io_uring_sqe* sqe) {
          // The loop gathers the rest: the ring returns what one recv gets.
          io_uring_prep_recv(sqe, fd, at, detail::RingLength(n - done),
                             flags & ~MSG_WAITALL);
        },
        [] {});
    if (got < 0) return done > 0 ? static_cast<ssize_t>(done) : -1;
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

ssize_t RecvFrom(int fd, void* buf, std::size_t n, int flags, sockaddr* addr,
                 socklen_t* len, Deadline deadline) {
  const iovec iov{buf, n};
  iovec ring_iov{buf, n};
  msghdr msg{};
  bool on_ring = false;
  const ssize_t result = Receive(
      fd, &iov, 1, flags, deadline, /*may_arm=*/true,
      [&](Use&) {
        on_ring = false;
        return Libc().recvfrom(fd, buf, n, flags, addr, len);
      },
      [&](io_uring_sqe* sqe) {
        msg = msghdr{};
        msg.msg_iov = &ring_iov;
        msg.msg_iovlen = 1;
        if (addr != nullptr && len != nullptr) {
          msg.msg_name = addr;
          msg.msg_namelen = *len;
        }
        on_ring = true;
        io_uring_prep_recvmsg(sqe, fd, &msg, static_cast<unsigned>(flags));
      },
      [&] {
        // A TCP connection's stream: recvfrom(2) gives no address there.
        on_ring = false;
        if (len != nullptr) *len = 0;
      });
  if (result >= 0 && on_ring && addr != nullptr && len != nullptr) *len = msg.msg_namelen;
  return result;
}

ssize_t RecvMsg(int fd, msghdr* msg, int flags, Deadline deadline) {
  // A call that asks for ancillary data does not arm a stream (whose
  // receives carry none); a stream armed already serves it without any.
  return Receive(
      fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen), flags, deadline,
      /*may_arm=*/msg->msg_controllen == 0,
      [&](Use&) { return Libc().recvmsg(fd, msg, flags); },
      [&](io_uring_sqe* sqe) {
        io_uring_prep_recvmsg(sqe, fd, msg, static_cast<unsigned>(flags));
      },
      [&] {
        msg->msg_namelen = 0;
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
      });
}

ssize_t Write(int fd, const void* buf, std::size_t n, Deadline deadline) {
  const auto* bytes = static_cast<const char*>(buf);
  return WriteAll(
      fd, n, deadline, false,
      [&](Use& use, std::size_t done) {
        if (use.is_socket()) return Libc().send(fd, bytes + done, n - done, MSG_NOSIGNAL);
        return WithoutSigpipe([&] { return Libc().write(fd, bytes + done, n - done); });
      },
      [&](io_uring_sqe* sqe, std::size_t done) {
        io_uring_prep_send(sqe, fd, bytes + done, detail::RingLength(n - done),
                           MSG_NOSIGNAL);
      });
}

ssize_t WriteV(int fd, const iovec* iov, int iovcnt, Deadline deadline) {
  std::vector<iovec> storage;
  msghdr ring_msg{};  // the ring's request reads it until it completes
  return WriteAll(
      fd, IovTotal(iov, iovcnt), deadline, false,
      [&](Use& use, std::size_t done) {
        const iovec* rest = nullptr;
        const int count = SkipIov(iov, iovcnt, done, storage, &rest);
        if (use.is_socket()) {
          msghdr msg{};
          msg.msg_iov = const_cast<iovec*>(rest);
          msg.msg_iovlen = static_cast<std::size_t>(count);
          return Libc().sendmsg(fd, &msg, MSG_NOSIGNAL);
        }
        return WithoutSigpipe([&] { return Libc().writev(fd, rest, count); });
      },
      [&](io_uring_sqe* sqe, std::size_t done) {
        const iovec* rest = nullptr;
        ring_msg = msghdr{};
        ring_msg.msg_iovlen =
            static_cast<std::size_t>(SkipIov(iov, iovcnt, done, storage, &rest));
        ring_msg.msg_iov = const_cast<iovec*>(rest);
        io_uring_prep_sendmsg(sqe, fd, &ring_msg, MSG_NOSIGNAL);
      });
}

ssize_t Send(int fd, const void* buf, std::size_t n, int flags, Deadline deadline) {
  const auto* bytes = static_cast<const char*>(buf);
  return WriteAll(
      fd, n, deadline, (flags & MSG_DONTWAIT) != 0,
      [&](Use&, std::size_t done) {
        return Libc().send(fd, bytes + done, n - done, flags | MSG_NOSIGNAL);
      },
      [&](io_uring_sqe* sqe, std::size_t done) {
        io_uring_prep_send(sqe, fd, bytes + done, detail::RingLength(n - done),
                           flags | MSG_NOSIGNAL);
      });
}

ssize_t SendTo(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr,
               socklen_t len, Deadline deadline) {
  const auto* bytes = static_cast<const char*>(buf);
  iovec iov{};
  msghdr ring_msg{};  // the ring's request reads it until it completes
  return WriteAll(
      fd, n, deadline, (flags & MSG_DONTWAIT) != 0,
      [&](Use&, std::size_t done) {
        return Libc().sendto(fd, bytes + done, n - done, flags | MSG_NOSIGNAL, addr, len);
      },
      [&](io_uring_sqe* sqe, std::size_t done) {
        iov = iovec{const_cast<char*>(bytes) + done, n - done};
        ring_msg = msghdr{};
        ring_msg.msg_name = const_cast<sockaddr*>(addr);
        ring_msg.msg_namelen = addr != nullptr ? len : 0;
        ring_msg.msg_iov = &iov;
        ring_msg.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, fd, &ring_msg,
                              static_cast<unsigned>(flags | MSG_NOSIGNAL));
      });
}

ssize_t SendMsg(int fd, const msghdr* msg, int flags, Deadline deadline) {
  std::vector<iovec> storage;
  const int iovcnt = static_cast<int>(msg->msg_iovlen);
  // The part from byte `done` on (ancillary data went with the first bytes).
  auto rest_of = [&](std::size_t done) {
    msghdr rest = *msg;
    const iovec* iov = nullptr;
    rest.msg_iovlen =
        static_cast<std::size_t>(SkipIov(msg->msg_iov, iovcnt, done, storage, &iov));
    rest.msg_iov = const_cast<iovec*>(iov);
    if (done > 0) {
      rest.msg_control = nullptr;
      rest.msg_controllen = 0;
    }
    return rest;
  };
  msghdr ring_msg{};  // the ring's request reads it until it completes
  return WriteAll(
      fd, IovTotal(msg->msg_iov, iovcnt), deadline, (flags & MSG_DONTWAIT) != 0,
      [&](Use&, std::size_t done) {
        const msghdr rest = rest_of(done);
        return Libc().sendmsg(fd, &rest, flags | MSG_NOSIGNAL);
      },
      [&](io_uring_sqe* sqe, std::size_t done) {
        ring_msg = rest_of(done);
        io_uring_prep_sendmsg(sqe, fd, &ring_msg,
                              static_cast<unsigned>(flags | MSG_NOSIGNAL));
      });
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
