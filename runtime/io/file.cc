#include "runtime/io/file.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "runtime/blocking.h"
#include "runtime/detail/errno.h"
#include "runtime/detail/libc.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/file_ring.h"

namespace weft::io {
namespace {

using detail::FileRing;
using detail::RingRequest;

enum class Op : std::uint8_t { kRead, kWrite, kReadV, kWriteV, kFsync, kFdatasync };

// One call's arguments.
struct Call {
  Op op;
  int fd;
  void* buf = nullptr;
  std::size_t n = 0;
  const iovec* iov = nullptr;
  int iovcnt = 0;
  off_t offset = 0;
};

bool Writes(Op op) { return op == Op::kWrite || op == Op::kWriteV; }

// A pipe, FIFO or socket has no position: like io_uring, ignore the offset.
ssize_t CallOnStream(const Call& c) {
  for (;;) {
    ssize_t result = -1;
    switch (c.op) {
      case Op::kRead:
        result = detail::Libc().read(c.fd, c.buf, c.n);
        break;
      case Op::kWrite:
        result = detail::Libc().write(c.fd, c.buf, c.n);
        break;
      case Op::kReadV:
        result = detail::Libc().readv(c.fd, c.iov, c.iovcnt);
        break;
      case Op::kWriteV:
        result = detail::Libc().writev(c.fd, c.iov, c.iovcnt);
        break;
      case Op::kFsync:
      case Op::kFdatasync:
        return -EINVAL;
    }
    if (result >= 0) return result;
    const int error = detail::Errno();
    if (error != EINTR) return -error;
  }
}

// The system call on this thread: the count, or -errno.
ssize_t CallHere(const Call& c) {
  for (;;) {
    ssize_t result = -1;
    switch (c.op) {
      case Op::kRead:
        result = ::pread(c.fd, c.buf, c.n, c.offset);
        break;
      case Op::kWrite:
        result = ::pwrite(c.fd, c.buf, c.n, c.offset);
        break;
      case Op::kReadV:
        result = ::preadv(c.fd, c.iov, c.iovcnt, c.offset);
        break;
      case Op::kWriteV:
        result = ::pwritev(c.fd, c.iov, c.iovcnt, c.offset);
        break;
      case Op::kFsync:
        result = ::fsync(c.fd);
        break;
      case Op::kFdatasync:
        result = ::fdatasync(c.fd);
        break;
    }
    if (result >= 0) return result;
    const int error = detail::Errno();
    if (error == ESPIPE) return CallOnStream(c);
    if (error != EINTR) return -error;
  }
}

// With a deadline: waits for the descriptor to be ready in the call's
// direction (a regular file always is), then makes the call. The count, or
// -errno (-ETIMEDOUT).
ssize_t CallHereBy(const Call& c, Deadline deadline) {
  if (deadline.IsNever() || c.op == Op::kFsync || c.op == Op::kFdatasync) {
    return CallHere(c);
  }
  pollfd probe{c.fd, static_cast<short>(Writes(c.op) ? POLLOUT : POLLIN), 0};
  for (;;) {
    const auto left = deadline.TimePoint() - std::chrono::steady_clock::now();
    // Rounded up, so that the wait does not end just before the deadline.
    const auto ms = std::max<std::int64_t>(
        0, std::chrono::ceil<std::chrono::milliseconds>(left).count());
    const int ready = detail::Libc().poll(
        &probe, 1, static_cast<int>(std::min<std::int64_t>(ms, 1'000'000'000)));
    if (ready > 0) {
      // POLLNVAL: not open; the call says so (EBADF). Hang-up and errors too.
      return CallHere(c);
    }
    if (ready == 0) {
      if (deadline.HasPassed()) return -ETIMEDOUT;
      continue;
    }
    const int error = detail::Errno();
    if (error != EINTR) return -error;
  }
}

void Prepare(io_uring_sqe* sqe, const Call& c) {
  const unsigned n = detail::RingLength(c.n);
  const auto offset = static_cast<std::uint64_t>(c.offset);
  const auto iovcnt = static_cast<unsigned>(c.iovcnt);
  switch (c.op) {
    case Op::kRead:
      io_uring_prep_read(sqe, c.fd, c.buf, n, offset);
      break;
    case Op::kWrite:
      io_uring_prep_write(sqe, c.fd, c.buf, n, offset);
      break;
    case Op::kReadV:
      io_uring_prep_readv(sqe, c.fd, c.iov, iovcnt, offset);
      break;
    case Op::kWriteV:
      io_uring_prep_writev(sqe, c.fd, c.iov, iovcnt, offset);
      break;
    case Op::kFsync:
      io_uring_prep_fsync(sqe, c.fd, 0);
      break;
    case Op::kFdatasync:
      io_uring_prep_fsync(sqe, c.fd, IORING_FSYNC_DATASYNC);
      break;
  }
}

// From a fiber, on the blocking pool.
ssize_t CallOnPool(const Call& c, Deadline deadline) {
  detail::CountFileFallback();
  return RunBlocking([&] { return CallHereBy(c, deadline); });
}

// CallOnRing's answer when the fiber's worker has no ring (the kernel refused
// to create it): not an errno, the caller uses the pool instead.
constexpr ssize_t kNoRing = -(1 << 20);

// From a fiber, through the ring of its worker: the count, -errno or kNoRing.
ssize_t CallOnRing(const Call& c, Deadline deadline) {
  RingRequest request;
  const unsigned needed = deadline.IsNever() ? 1 : 2;
  FileRing* ring = nullptr;
  for (;;) {
    // Again after each wait for room: the fiber may have moved.
    ring = detail::CurrentWorker()->FileRingForCurrentFiber();
    if (ring == nullptr) return kNoRing;
    if (ring->TryStart(&request, deadline.TimePoint(),
                       [&](io_uring_sqe* sqe) { Prepare(sqe, c); })) {
      break;
    }
    ring->WaitForRoom(needed);
  }
  const int result = FileRing::Wait(&request, ring);
  // The linked timeout cancelled the request.
  if (result == -ECANCELED && !deadline.IsNever()) return -ETIMEDOUT;
  return result;
}

ssize_t Run(const Call& c, Deadline deadline = {}) {
  ssize_t result = kNoRing;
  if (c.offset < 0 || c.iovcnt < 0) {
    result = -EINVAL;
  } else if (!detail::InFiber(detail::CurrentWorker())) {
    result = CallHereBy(c, deadline);
  } else {
    if (detail::FileRingsEnabled()) result = CallOnRing(c, deadline);
    if (result == kNoRing) result = CallOnPool(c, deadline);
  }
  if (result < 0) {
    detail::SetErrno(static_cast<int>(-result));
    return -1;
  }
  return result;
}

}  // namespace

ssize_t PRead(int fd, void* buf, std::size_t n, off_t offset, Deadline deadline) {
  Call c{Op::kRead, fd};
  c.buf = buf;
  c.n = n;
  c.offset = offset;
  return Run(c, deadline);
}

ssize_t PWrite(int fd, const void* buf, std::size_t n, off_t offset, Deadline deadline) {
  Call c{Op::kWrite, fd};
  c.buf = const_cast<void*>(buf);
  c.n = n;
  c.offset = offset;
  return Run(c, deadline);
}

ssize_t PReadV(int fd, const iovec* iov, int iovcnt, off_t offset, Deadline deadline) {
  Call c{Op::kReadV, fd};
  c.iov = iov;
  c.iovcnt = iovcnt;
  c.offset = offset;
  return Run(c, deadline);
}

ssize_t PWriteV(int fd, const iovec* iov, int iovcnt, off_t offset, Deadline deadline) {
  Call c{Op::kWriteV, fd};
  c.iov = iov;
  c.iovcnt = iovcnt;
  c.offset = offset;
  return Run(c, deadline);
}

int Fsync(int fd) { return static_cast<int>(Run(Call{Op::kFsync, fd})); }

int Fdatasync(int fd) { return static_cast<int>(Run(Call{Op::kFdatasync, fd})); }

}  // namespace weft::io
