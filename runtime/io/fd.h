// weft::io, the descriptor level: the POSIX calls on sockets, pipes and other
// pollable descriptors, for fibers. A call that would block parks only the
// calling fiber (its worker runs other fibers meanwhile) until the descriptor
// is ready, the deadline passes or another fiber or thread closes it; from a
// plain thread the same call blocks that thread.
//
//   int fd = weft::io::Socket(AF_INET, SOCK_STREAM, 0);
//   if (weft::io::Connect(fd, addr, len, std::chrono::seconds(1)) != 0) { ... errno ... }
//   ssize_t n = weft::io::Read(fd, buf, sizeof(buf), std::chrono::milliseconds(200));
//   weft::io::Write(fd, reply.data(), reply.size());   // all of it, or an error
//   weft::io::Close(fd);
//
// Results and errors are POSIX's: -1 and errno, with these additions:
// - ETIMEDOUT: the deadline passed before the call could complete. A deadline
//   that has passed already still lets a call complete what it can at once.
// - ECANCELED: the descriptor was closed with Close() by someone else while the
//   call waited.
// - EBADF: the descriptor is not open, or Close() was called on it.
// - EAGAIN / EWOULDBLOCK only when the caller asked for a non-blocking call
//   (MSG_DONTWAIT), never because another fiber waits on the same descriptor.
//
// Descriptors made by Socket() and Accept() are non-blocking, close-on-exec and
// registered with the calling fiber's scheduling group. Any other descriptor
// (a pipe, an eventfd, a socket made elsewhere) may be passed to these calls:
// it is switched to non-blocking and registered on first use. Regular files
// cannot be polled; calls on them simply run (use runtime/io/file.h for those).
// A descriptor registered by weft must be closed with Close(), which wakes
// every waiter (ECANCELED) and closes the descriptor once no call uses it: a
// number reused afterwards never receives a readiness or cancellation meant for
// the old descriptor. (Closing it with ::close() instead leaves weft's record
// of it behind; the next Socket() or Accept() that gets the number cancels
// any call still waiting on the old one.)
//
// Writes never raise SIGPIPE (sockets and pipes alike) and never change the
// process's signal dispositions: a write to a closed peer fails with EPIPE.
//
// Thread-safety: any number of fibers and threads may call these on one
// descriptor at once. Readers are served in the order they started waiting,
// and so are writers; two concurrent Write() calls on a stream socket may
// interleave their bytes, as with POSIX (serialize writers that need whole
// messages, e.g. with a FiberMutex).
#ifndef WEFT_RUNTIME_IO_FD_H_
#define WEFT_RUNTIME_IO_FD_H_

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

#include "runtime/deadline.h"

namespace weft::io {

// socket(2), made non-blocking and close-on-exec and registered.
int Socket(int domain, int type, int protocol);

// accept(2) that waits for a connection; the new socket is non-blocking,
// close-on-exec and registered. Other errors (EMFILE, ECONNABORTED, ...) are
// returned as they come: a loop that accepts should back off on EMFILE and
// ENFILE (TcpListener::Accept does).
int Accept(int listen_fd, sockaddr* addr, socklen_t* len, Deadline deadline = {});

// connect(2) that waits for the connection to be established. On ETIMEDOUT
// or ECANCELED the attempt may still be under way: close the socket.
int Connect(int fd, const sockaddr* addr, socklen_t len, Deadline deadline = {});

// Reads return what is there (at least one byte), 0 at end of file, or wait.
ssize_t Read(int fd, void* buf, std::size_t n, Deadline deadline = {});
ssize_t ReadV(int fd, const iovec* iov, int iovcnt, Deadline deadline = {});
// MSG_DONTWAIT: fail with EAGAIN instead of waiting. MSG_WAITALL: wait for all
// `n` bytes (fewer only at end of stream, on an error or at the deadline, when
// the count read so far is returned).
ssize_t Recv(int fd, void* buf, std::size_t n, int flags, Deadline deadline = {});
ssize_t RecvFrom(int fd, void* buf, std::size_t n, int flags, sockaddr* addr,
                 socklen_t* len, Deadline deadline = {});
ssize_t RecvMsg(int fd, msghdr* msg, int flags, Deadline deadline = {});

// Writes return only when everything was written, or on an error or at the
// deadline: then the count written so far if it is not zero, else -1 with
// errno. A datagram goes as a whole or not at all. MSG_DONTWAIT: write what
// fits now, EAGAIN if nothing does.
ssize_t Write(int fd, const void* buf, std::size_t n, Deadline deadline = {});
ssize_t WriteV(int fd, const iovec* iov, int iovcnt, Deadline deadline = {});
ssize_t Send(int fd, const void* buf, std::size_t n, int flags, Deadline deadline = {});
ssize_t SendTo(int fd, const void* buf, std::size_t n, int flags, const sockaddr* addr,
               socklen_t len, Deadline deadline = {});
ssize_t SendMsg(int fd, const msghdr* msg, int flags, Deadline deadline = {});

// Wait until the descriptor is readable (data, end of stream, an error or a
// pending connection) or writable: 0, or -1 with errno.
int WaitReadable(int fd, Deadline deadline = {});
int WaitWritable(int fd, Deadline deadline = {});

// Wakes every call waiting on `fd` (they fail with ECANCELED) and closes it,
// before returning if no call is using it, otherwise as the last one returns.
// 0, or -1 with EBADF when `fd` is not open (or is being closed already). A
// descriptor weft never saw is simply closed.
int Close(int fd);

}  // namespace weft::io

#endif  // WEFT_RUNTIME_IO_FD_H_
