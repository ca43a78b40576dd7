// weft::io for files: positioned reads and writes and syncs that park only
// the calling fiber while the kernel works, never its worker.
//
//   int fd = ::open(path, O_RDWR | O_CLOEXEC);
//   ssize_t n = weft::io::PRead(fd, buf, 4096, offset);   // -1 and errno on error
//   weft::io::PWrite(fd, data, size, offset, std::chrono::seconds(1));
//   weft::io::Fsync(fd);
//
// Engine. From a fiber, the call goes through the io_uring of the worker the
// fiber runs on (one ring per worker, created on its first file call): the
// request is submitted at once and the fiber parks until its completion,
// which any worker of the group may reap; it may resume on another worker.
// A read the kernel serves from the page cache completes inside the submit,
// and the fiber then returns without parking. Where io_uring is not
// available (RuntimeOptions::io_engine / --weft_io_engine "epoll", a kernel
// or seccomp filter that refuses it, /proc/sys/kernel/io_uring_disabled), the
// same call runs on the blocking pool (runtime/blocking.h) and the fiber
// parks until it returns. The runtime logs once which engine files use and
// why; DumpRuntimeStats() shows it with counters. From a plain thread (or
// with no runtime) the call simply makes the system call on that thread.
//
// Results and errors are POSIX's (pread(2), pwrite(2), preadv(2),
// pwritev(2), fsync(2), fdatasync(2)): a count, or -1 with errno, plus:
// - Short transfers are returned as the kernel gives them: a read returns
//   fewer bytes than asked at end of file (0 at or past it), and a read or
//   write on a pipe, FIFO or socket returns what it moved. Loop if you need
//   every byte.
// - ETIMEDOUT: the deadline passed before the request completed. The request
//   was cancelled (a linked timeout, IORING_OP_LINK_TIMEOUT) and the call
//   returns only after the kernel is done with the buffer, so the buffer may
//   live on the fiber's stack. A deadline matters for descriptors that may
//   never become ready (pipes, FIFOs, sockets); a read or write of a regular
//   file is not interrupted once the kernel has started it, and a deadline
//   that has passed already still lets a request complete what it can at
//   once. On the blocking pool and on plain threads a deadline waits for
//   readiness with poll(2) before the call.
// - EINVAL: a negative offset (these calls never use the file position).
//   On a pipe, FIFO or socket, which has no position, the offset is ignored
//   (as io_uring does) instead of failing with ESPIPE; these calls then act
//   as read(2)/write(2) do (a write to a pipe without reader may raise
//   SIGPIPE). For pipes and sockets runtime/io/fd.h is the better fit.
// - EBADF: `fd` is not an open descriptor (or not open for that direction).
//
// Thread-safety: any number of fibers and threads may call these at once, on
// one descriptor or many; concurrent writes to overlapping ranges land in an
// unspecified order, as with pwrite(2). The caller keeps `fd`, the buffers
// and the iovec arrays valid until the call returns (it returns only once
// the kernel is done with them).
#ifndef WEFT_RUNTIME_IO_FILE_H_
#define WEFT_RUNTIME_IO_FILE_H_

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

#include "runtime/deadline.h"

namespace weft::io {

// pread(2): up to `n` bytes of `fd` from `offset` into `buf`.
ssize_t PRead(int fd, void* buf, std::size_t n, off_t offset, Deadline deadline = {});

// pwrite(2): up to `n` bytes of `buf` to `fd` at `offset`.
ssize_t PWrite(int fd, const void* buf, std::size_t n, off_t offset,
               Deadline deadline = {});

// preadv(2) / pwritev(2): the vectored forms; `iovcnt` up to IOV_MAX.
ssize_t PReadV(int fd, const iovec* iov, int iovcnt, off_t offset,
               Deadline deadline = {});
ssize_t PWriteV(int fd, const iovec* iov, int iovcnt, off_t offset,
                Deadline deadline = {});

// fsync(2) / fdatasync(2): 0, or -1 with errno.
int Fsync(int fd);
int Fdatasync(int fd);

}  // namespace weft::io

#endif  // WEFT_RUNTIME_IO_FILE_H_
