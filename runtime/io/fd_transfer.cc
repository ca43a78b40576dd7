// The reads and writes of runtime/io/fd.h: the retry loops of calls that
// transfer data (Transfer, WriteAll, Receive) and the calls built on them.
// Descriptors' lifetimes, accept, connect and the readiness waits are in fd.cc.
#include "runtime/io/fd.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "runtime/detail/errno.h"
#include "runtime/detail/libc.h"
#include "runtime/io/detail/descriptor_use.h"
#include "runtime/io/detail/receive_stream.h"
#include "runtime/io/detail/standing_stream.h"
#include "runtime/scheduling_group/file_ring.h"

namespace weft::io {
namespace {

using detail::FileRing;
using detail::IoDirection;
using detail::Libc;
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

}  // namespace

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

}  // namespace weft::io
