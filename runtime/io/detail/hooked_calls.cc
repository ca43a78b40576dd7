#include "runtime/io/detail/hooked_calls.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "hook/hook.h"
#include "runtime/deadline.h"
#include "runtime/detail/errno.h"
#include "runtime/detail/libc.h"
#include "runtime/fiber_local.h"
#include "runtime/io/detail/receive_stream.h"
#include "runtime/io/detail/resolver.h"
#include "runtime/io/fd.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/this_fiber.h"

namespace weft::detail {
namespace {

bool CallerIsFiber() { return InFiber(CurrentWorker()); }

// Sockets, pipes and FIFOs, eventfds: the descriptors whose blocking calls the
// hooks take over. A terminal or a device is left alone: making it
// non-blocking would change it for every process that shares it.
bool Hookable(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)) return true;
  if ((st.st_mode & S_IFMT) != 0) return false;
  // An anonymous inode (no file type): eventfd, epoll, timerfd, signalfd...
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  char target[32];
  const ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  return std::strcmp(target, "anon_inode:[eventfd]") == 0;
}

// The slot of `fd` if weft has it open (and not closing), else nullptr.
DescriptorState* OpenSlot(int fd) {
  if (fd < 0) return nullptr;
  DescriptorState* slot = FindDescriptorSlot(fd);
  if (slot == nullptr) return nullptr;
  const std::uint64_t word = slot->word.load(std::memory_order_acquire);
  if ((word & DescriptorState::kOpen) == 0 || (word & DescriptorState::kClosing) != 0) {
    return nullptr;
  }
  return slot;
}

// For a hooked call on `fd`: the slot when the call goes through weft::io
// (see hooked_calls.h), nullptr when it goes to the C library.
DescriptorState* ThroughWeft(int fd) {
  DescriptorState* slot = OpenSlot(fd);
  if (slot == nullptr) {
    if (fd < 0 || !CallerIsFiber() || !Hookable(fd)) return nullptr;
    const int saved = Errno();
    const int error = AdoptDescriptor(fd);
    SetErrno(saved);
    if (error != 0) return nullptr;  // the C library reports what is wrong
    slot = OpenSlot(fd);
    if (slot == nullptr) return nullptr;
  }
  // A hooked poll(2) would not see bytes a receive stream took.
  RefuseReceiveStreams(*slot);
  if (!slot->pollable || slot->user_nonblocking.load(std::memory_order_relaxed)) {
    return nullptr;
  }
  return slot;
}

Deadline TimeoutDeadline(std::int64_t ns) {
  if (ns <= 0) return Deadline::Never();
  return Deadline(std::chrono::nanoseconds(ns));
}

// weft::io's errors as the C library's blocking call would give them: a
// passed SO_RCVTIMEO / SO_SNDTIMEO is EAGAIN (`timed_out` for connect), a
// close by someone else while waiting is EBADF.
template <class T>
T AsLibc(T result, bool timed, int timed_out = EAGAIN) {
  if (result < 0) {
    int error = Errno();
    if (error == ETIMEDOUT && timed) error = timed_out;
    if (error == ECANCELED) error = EBADF;
    SetErrno(error);
  }
  return result;
}

template <class Op>
ssize_t Receive(DescriptorState* slot, Op op) {
  const std::int64_t timeout = slot->receive_timeout_ns.load(std::memory_order_relaxed);
  return AsLibc(op(TimeoutDeadline(timeout)), timeout > 0);
}

template <class Op>
ssize_t Transmit(DescriptorState* slot, Op op) {
  const std::int64_t timeout = slot->send_timeout_ns.load(std::memory_order_relaxed);
  return AsLibc(op(TimeoutDeadline(timeout)), timeout > 0);
}

ssize_t HookedRead(int fd, void* buf, size_t n) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr) return Libc().read(fd, buf, n);
  return Receive(slot, [&](Deadline d) { return io::Read(fd, buf, n, d); });
}

ssize_t HookedWrite(int fd, const void* buf, size_t n) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr) return Libc().write(fd, buf, n);
  return Transmit(slot, [&](Deadline d) { return io::Write(fd, buf, n, d); });
}

ssize_t HookedReadV(int fd, const iovec* iov, int iovcnt) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr) return Libc().readv(fd, iov, iovcnt);
  return Receive(slot, [&](Deadline d) { return io::ReadV(fd, iov, iovcnt, d); });
}

ssize_t HookedWriteV(int fd, const iovec* iov, int iovcnt) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr) return Libc().writev(fd, iov, iovcnt);
  return Transmit(slot, [&](Deadline d) { return io::WriteV(fd, iov, iovcnt, d); });
}

// MSG_DONTWAIT asks for the C library's non-blocking call as it is.
ssize_t HookedRecv(int fd, void* buf, size_t n, int flags) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().recv(fd, buf, n, flags);
  return Receive(slot, [&](Deadline d) { return io::Recv(fd, buf, n, flags, d); });
}

ssize_t HookedSend(int fd, const void* buf, size_t n, int flags) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().send(fd, buf, n, flags);
  return Transmit(slot, [&](Deadline d) { return io::Send(fd, buf, n, flags, d); });
}

ssize_t HookedRecvFrom(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                       socklen_t* len) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().recvfrom(fd, buf, n, flags, addr, len);
  return Receive(slot,
                 [&](Deadline d) { return io::RecvFrom(fd, buf, n, flags, addr, len, d); });
}

ssize_t HookedSendTo(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
                     socklen_t len) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().sendto(fd, buf, n, flags, addr, len);
  return Transmit(slot,
                  [&](Deadline d) { return io::SendTo(fd, buf, n, flags, addr, len, d); });
}

ssize_t HookedRecvMsg(int fd, msghdr* msg, int flags) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().recvmsg(fd, msg, flags);
  return Receive(slot, [&](Deadline d) { return io::RecvMsg(fd, msg, flags, d); });
}

ssize_t HookedSendMsg(int fd, const msghdr* msg, int flags) {
  DescriptorState* slot = (flags & MSG_DONTWAIT) != 0 ? nullptr : ThroughWeft(fd);
  if (slot == nullptr) return Libc().sendmsg(fd, msg, flags);
  return Transmit(slot, [&](Deadline d) { return io::SendMsg(fd, msg, flags, d); });
}

int HookedAccept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) {
    return Libc().accept4(fd, addr, len, flags);
  }
  const std::int64_t timeout = slot->receive_timeout_ns.load(std::memory_order_relaxed);
  const int accepted = io::Accept(fd, addr, len, TimeoutDeadline(timeout));
  if (accepted < 0) return AsLibc(accepted, timeout > 0);
  // weft::io::Accept makes the socket close-on-exec and non-blocking; the user
  // sees what the flags asked for.
  if ((flags & SOCK_CLOEXEC) == 0) Libc().fcntl(accepted, F_SETFD, nullptr);
  DescriptorSlot(accepted).user_nonblocking.store((flags & SOCK_NONBLOCK) != 0,
                                                  std::memory_order_relaxed);
  return accepted;
}

int HookedAccept(int fd, sockaddr* addr, socklen_t* len) {
  if (ThroughWeft(fd) == nullptr) return Libc().accept(fd, addr, len);
  return HookedAccept4(fd, addr, len, 0);
}

// Linux reports a blocking connect whose SO_SNDTIMEO passed as EINPROGRESS.
int HookedConnect(int fd, const sockaddr* addr, socklen_t len) {
  DescriptorState* slot = ThroughWeft(fd);
  if (slot == nullptr) return Libc().connect(fd, addr, len);
  const std::int64_t timeout = slot->send_timeout_ns.load(std::memory_order_relaxed);
  return AsLibc(io::Connect(fd, addr, len, TimeoutDeadline(timeout)), timeout > 0,
                EINPROGRESS);
}

// Waiting for a poll set that is not ready yet, from a fiber.

// One descriptor waiting for input only or for output only: weft::io's own
// wait. -1 when the set does not have that shape (or the descriptor cannot be
// adopted), else 0 (ready or timed out: poll again) or 1 (closed while
// waiting; `fds` updated).
int WaitOne(pollfd* fds, nfds_t n, Deadline deadline) {
  if (n != 1 || fds[0].fd < 0) return -1;
  constexpr short kInput = POLLIN | POLLRDNORM | POLLRDHUP;
  constexpr short kOutput = POLLOUT | POLLWRNORM;
  const short events = fds[0].events;
  const bool input = events != 0 && (events & ~kInput) == 0;
  const bool output = events != 0 && (events & ~kOutput) == 0;
  if (!input && !output) return -1;
  const int fd = fds[0].fd;
  DescriptorState* slot = OpenSlot(fd);
  if (slot == nullptr) {
    if (!Hookable(fd) || AdoptDescriptor(fd) != 0) return -1;
    slot = OpenSlot(fd);
    if (slot == nullptr || !slot->pollable) return -1;
  } else if (!slot->pollable) {
    return -1;
  }
  const int rc = input ? io::WaitReadable(fd, deadline) : io::WaitWritable(fd, deadline);
  if (rc != 0 && Errno() == ECANCELED) {
    fds[0].revents = POLLNVAL;
    return 1;
  }
  return 0;
}

std::uint32_t EpollEvents(short events) {
  std::uint32_t out = 0;
  if ((events & (POLLIN | POLLRDNORM)) != 0) out |= EPOLLIN;
  if ((events & (POLLOUT | POLLWRNORM)) != 0) out |= EPOLLOUT;
  if ((events & POLLPRI) != 0) out |= EPOLLPRI;
  if ((events & POLLRDHUP) != 0) out |= EPOLLRDHUP;
  return out;
}

// Any set: a private epoll instance holds the set's descriptors (level-
// triggered, their modes untouched: terminals and devices are fine), and the
// fiber waits for that instance to become readable. Returns 0 (poll again),
// or -1 with errno.
int WaitMany(pollfd* fds, nfds_t n, Deadline deadline) {
  const int instance = epoll_create1(EPOLL_CLOEXEC);
  if (instance < 0) return -1;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    epoll_event event{};
    event.data.fd = fds[i].fd;
    event.events = EpollEvents(fds[i].events);
    if (epoll_ctl(instance, EPOLL_CTL_ADD, fds[i].fd, &event) == 0) continue;
    if (Errno() == EEXIST) {
      // The same descriptor twice in the set: wait for the union.
      for (nfds_t j = 0; j < i; ++j) {
        if (fds[j].fd == fds[i].fd) event.events |= EpollEvents(fds[j].events);
      }
      epoll_ctl(instance, EPOLL_CTL_MOD, fds[i].fd, &event);
    }
    // EPERM: a regular file, always ready (the caller's poll saw it already).
  }
  const int rc = io::WaitReadable(instance, deadline);
  const int error = rc != 0 ? Errno() : 0;
  io::Close(instance);
  if (rc != 0 && error != ETIMEDOUT) {
    SetErrno(error);
    return -1;
  }
  return 0;
}

// poll(2) from a fiber, the set known not ready now: waits (parking) until
// something is ready or the deadline passes.
int PollParked(pollfd* fds, nfds_t n, Deadline deadline) {
  if (n == 0) {
    this_fiber::SleepUntil(deadline.TimePoint());
    return 0;
  }
  for (;;) {
    const int one = WaitOne(fds, n, deadline);
    if (one == 1) return 1;
    if (one < 0 && WaitMany(fds, n, deadline) != 0) return -1;
    const int ready = Libc().poll(fds, n, 0);
    if (ready != 0 || deadline.HasPassed()) return ready;
  }
}

int HookedPoll(pollfd* fds, nfds_t n, int timeout) {
  if (timeout == 0 || !CallerIsFiber()) return Libc().poll(fds, n, timeout);
  const int ready = Libc().poll(fds, n, 0);
  if (ready != 0) return ready;
  const Deadline deadline =
      timeout < 0 ? Deadline::Never() : Deadline(std::chrono::milliseconds(timeout));
  const int saved = Errno();
  const int result = PollParked(fds, n, deadline);
  if (result >= 0) SetErrno(saved);  // success leaves errno alone, as the C library's
  return result;
}

// select(2) as poll(2) over the same descriptors, with Linux's readiness sets
// and its update of the timeout to the time not slept.
int HookedSelect(int n, fd_set* readfds, fd_set* writefds, fd_set* exceptfds,
                 timeval* timeout) {
  const bool immediate = timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_usec == 0;
  if (immediate || !CallerIsFiber() || n < 0 || n > FD_SETSIZE ||
      (timeout != nullptr && (timeout->tv_sec < 0 || timeout->tv_usec < 0))) {
    return Libc().select(n, readfds, writefds, exceptfds, timeout);
  }
  const auto start = std::chrono::steady_clock::now();
  Deadline deadline = Deadline::Never();
  if (timeout != nullptr) {
    deadline = Deadline(start + std::chrono::seconds(timeout->tv_sec) +
                        std::chrono::microseconds(timeout->tv_usec));
  }
  std::vector<pollfd> set;
  for (int fd = 0; fd < n; ++fd) {
    short events = 0;
    if (readfds != nullptr && FD_ISSET(fd, readfds)) events |= POLLIN;
    if (writefds != nullptr && FD_ISSET(fd, writefds)) events |= POLLOUT;
    if (exceptfds != nullptr && FD_ISSET(fd, exceptfds)) events |= POLLPRI;
    if (events != 0) set.push_back(pollfd{fd, events, 0});
  }
  const int saved = Errno();
  int ready = Libc().poll(set.data(), set.size(), 0);
  if (ready == 0) ready = PollParked(set.data(), set.size(), deadline);
  if (ready < 0) return -1;
  SetErrno(saved);
  for (const pollfd& entry : set) {
    if ((entry.revents & POLLNVAL) != 0) {
      SetErrno(EBADF);
      return -1;
    }
  }
  if (readfds != nullptr) FD_ZERO(readfds);
  if (writefds != nullptr) FD_ZERO(writefds);
  if (exceptfds != nullptr) FD_ZERO(exceptfds);
  int count = 0;
  for (const pollfd& entry : set) {
    if ((entry.events & POLLIN) != 0 && (entry.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      FD_SET(entry.fd, readfds);
      ++count;
    }
    if ((entry.events & POLLOUT) != 0 && (entry.revents & (POLLOUT | POLLERR)) != 0) {
      FD_SET(entry.fd, writefds);
      ++count;
    }
    if ((entry.events & POLLPRI) != 0 && (entry.revents & POLLPRI) != 0) {
      FD_SET(entry.fd, exceptfds);
      ++count;
    }
  }
  if (timeout != nullptr) {
    const auto left = std::max(std::chrono::steady_clock::duration::zero(),
                               deadline.TimePoint() - std::chrono::steady_clock::now());
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    timeout->tv_sec = static_cast<time_t>(us / 1'000'000);
    timeout->tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  }
  return count;
}

// Sleeps park the fiber. A signal delivered to the worker meanwhile was not
// meant for the fiber, so the sleep is not cut short (no EINTR, nothing left
// to report in `rem`).
// errno is left as it was, as by a sleep that completes.
template <class Duration>
void Sleep(Duration duration) {
  const int saved = Errno();
  this_fiber::SleepFor(duration);
  SetErrno(saved);
}

unsigned HookedSleep(unsigned seconds) {
  if (!CallerIsFiber()) return Libc().sleep(seconds);
  Sleep(std::chrono::seconds(seconds));
  return 0;
}

int HookedUsleep(useconds_t usec) {
  if (!CallerIsFiber()) return Libc().usleep(usec);
  Sleep(std::chrono::microseconds(usec));
  return 0;
}

int HookedNanosleep(const timespec* req, timespec* rem) {
  if (!CallerIsFiber() || req == nullptr) return Libc().nanosleep(req, rem);
  if (req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1'000'000'000) {
    SetErrno(EINVAL);
    return -1;
  }
  Sleep(std::chrono::seconds(req->tv_sec) + std::chrono::nanoseconds(req->tv_nsec));
  return 0;
}

// weft::io::Close from any thread: a descriptor weft has open must be closed
// through it (its waiters woken, its record reset); any other goes to the C
// library.
int HookedClose(int fd) { return io::Close(fd); }

int HookedSetsockopt(int fd, int level, int name, const void* value, socklen_t len) {
  const int rc = Libc().setsockopt(fd, level, name, value, len);
  if (rc != 0 || level != SOL_SOCKET || value == nullptr || len < sizeof(timeval)) return rc;
  const bool receive = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
  const bool send = name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW;
  if (!receive && !send) return rc;
  DescriptorState* slot = OpenSlot(fd);
  if (slot == nullptr) return rc;  // read from the socket when weft adopts it
  timeval tv;
  std::memcpy(&tv, value, sizeof(tv));
  const std::int64_t ns =
      std::int64_t{tv.tv_sec} * 1'000'000'000 + std::int64_t{tv.tv_usec} * 1'000;
  (receive ? slot->receive_timeout_ns : slot->send_timeout_ns)
      .store(ns, std::memory_order_relaxed);
  return rc;
}

// fcntl: F_GETFL shows the O_NONBLOCK the user set, F_SETFL records it and
// keeps the descriptor non-blocking underneath.
int Fcntl(int (*real)(int, int, void*), int fd, int cmd, void* arg) {
  if (cmd != F_GETFL && cmd != F_SETFL) return real(fd, cmd, arg);
  DescriptorState* slot = OpenSlot(fd);
  if (slot == nullptr || !slot->pollable) return real(fd, cmd, arg);
  if (cmd == F_GETFL) {
    const int flags = real(fd, cmd, arg);
    if (flags < 0) return flags;
    const bool user = slot->user_nonblocking.load(std::memory_order_relaxed);
    return (flags & ~O_NONBLOCK) | (user ? O_NONBLOCK : 0);
  }
  const int wanted = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  const int rc =
      real(fd, F_SETFL, reinterpret_cast<void*>(static_cast<std::intptr_t>(wanted | O_NONBLOCK)));
  if (rc == 0) {
    slot->user_nonblocking.store((wanted & O_NONBLOCK) != 0, std::memory_order_relaxed);
  }
  return rc;
}

int HookedFcntl(int fd, int cmd, void* arg) { return Fcntl(Libc().fcntl, fd, cmd, arg); }
int HookedFcntl64(int fd, int cmd, void* arg) { return Fcntl(Libc().fcntl64, fd, cmd, arg); }

int HookedIoctl(int fd, unsigned long request, void* arg) {
  DescriptorState* slot = request == FIONBIO && arg != nullptr ? OpenSlot(fd) : nullptr;
  if (slot == nullptr || !slot->pollable) return Libc().ioctl(fd, request, arg);
  int on = 1;
  const int rc = Libc().ioctl(fd, FIONBIO, &on);
  if (rc == 0) {
    slot->user_nonblocking.store(*static_cast<const int*>(arg) != 0,
                                 std::memory_order_relaxed);
  }
  return rc;
}

// Name lookups from a fiber go through weft's resolver (runtime/io/detail/
// resolver.h): the C library's query runs on the blocking pool, from start to
// end on one thread, so its per-thread resolver state never sees a fiber move;
// concurrent identical lookups share one query and answers are cached.
int HookedGetaddrinfo(const char* node, const char* service, const addrinfo* hints,
                      addrinfo** result) {
  if (!CallerIsFiber()) return Libc().getaddrinfo(node, service, hints, result);
  const int saved = Errno();
  const int code = io::detail::GetAddrInfo(node, service, hints, result, Deadline::Never());
  if (code != EAI_SYSTEM) SetErrno(saved);
  return code;
}

[[gnu::noinline]] void SetHErrno(int value) {
  asm volatile("" ::: "memory");
  h_errno = value;
}

// gethostbyname_r from the resolver's IPv4 answer: `ret` and the pointers,
// addresses and names it refers to laid out in `buf`.
int Gethostbyname(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result,
                  int* h_errnop) {
  *result = nullptr;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* list = nullptr;
  const int code = io::detail::GetAddrInfo(name, nullptr, &hints, &list, Deadline::Never());
  if (code != 0) {
    *h_errnop = code == EAI_AGAIN ? TRY_AGAIN
                : (code == EAI_NONAME || code == EAI_NODATA || code == EAI_FAMILY)
                    ? HOST_NOT_FOUND
                    : NO_RECOVERY;
    return 0;
  }
  std::size_t count = 0;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) ++count;
  const char* canonical = list->ai_canonname != nullptr ? list->ai_canonname : name;
  const std::size_t name_size = std::strlen(canonical) + 1;
  // aliases (one null), address pointers (count + null), addresses, name.
  const std::size_t pointers = (1 + count + 1) * sizeof(char*);
  const std::size_t misalign = reinterpret_cast<std::uintptr_t>(buf) % alignof(char*);
  const std::size_t skip = misalign == 0 ? 0 : alignof(char*) - misalign;
  if (buflen < skip + pointers + count * sizeof(in_addr) + name_size) {
    freeaddrinfo(list);
    *h_errnop = NETDB_INTERNAL;
    return ERANGE;
  }
  char** table = reinterpret_cast<char**>(buf + skip);
  char* addresses = buf + skip + pointers;
  char* stored_name = addresses + count * sizeof(in_addr);
  table[0] = nullptr;  // no aliases
  char** address_list = table + 1;
  std::size_t i = 0;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next, ++i) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
    std::memcpy(addresses + i * sizeof(in_addr), &in->sin_addr, sizeof(in_addr));
    address_list[i] = addresses + i * sizeof(in_addr);
  }
  address_list[count] = nullptr;
  std::memcpy(stored_name, canonical, name_size);
  freeaddrinfo(list);
  ret->h_name = stored_name;
  ret->h_aliases = table;
  ret->h_addrtype = AF_INET;
  ret->h_length = sizeof(in_addr);
  ret->h_addr_list = address_list;
  *result = ret;
  *h_errnop = 0;
  return 0;
}

int HookedGethostbynameR(const char* name, hostent* ret, char* buf, size_t buflen,
                         hostent** result, int* h_errnop) {
  if (!CallerIsFiber()) return Libc().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  const int saved = Errno();
  const int rc = Gethostbyname(name, ret, buf, buflen, result, h_errnop);
  SetErrno(rc == ERANGE ? ERANGE : saved);
  return rc;
}

// gethostbyname's answer lives in a buffer of the calling fiber (the C
// library's is one per process): valid until the fiber's next call or its
// end, wherever the fiber runs meanwhile. h_errno is set on the thread that
// returns to the caller.
struct HostBuffer {
  hostent host{};
  std::vector<char> bytes = std::vector<char>(1024);
};
FiberLocal<HostBuffer> host_buffer;

hostent* HookedGethostbyname(const char* name) {
  if (!CallerIsFiber()) return Libc().gethostbyname(name);
  HostBuffer& buffer = *host_buffer;
  const int saved = Errno();
  for (;;) {
    hostent* result = nullptr;
    int error = 0;
    const int rc = Gethostbyname(name, &buffer.host, buffer.bytes.data(), buffer.bytes.size(),
                                 &result, &error);
    if (rc == ERANGE) {
      buffer.bytes.resize(buffer.bytes.size() * 2);
      continue;
    }
    SetErrno(saved);
    SetHErrno(result != nullptr ? 0 : error);
    return result;
  }
}

weft_hook_functions EntryPoints() {
  weft_hook_functions calls{};
  calls.read = &HookedRead;
  calls.write = &HookedWrite;
  calls.readv = &HookedReadV;
  calls.writev = &HookedWriteV;
  calls.recv = &HookedRecv;
  calls.send = &HookedSend;
  calls.recvfrom = &HookedRecvFrom;
  calls.sendto = &HookedSendTo;
  calls.recvmsg = &HookedRecvMsg;
  calls.sendmsg = &HookedSendMsg;
  calls.accept = &HookedAccept;
  calls.accept4 = &HookedAccept4;
  calls.connect = &HookedConnect;
  calls.poll = &HookedPoll;
  calls.select = &HookedSelect;
  calls.sleep = &HookedSleep;
  calls.usleep = &HookedUsleep;
  calls.nanosleep = &HookedNanosleep;
  calls.close = &HookedClose;
  calls.getaddrinfo = &HookedGetaddrinfo;
  calls.gethostbyname = &HookedGethostbyname;
  calls.gethostbyname_r = &HookedGethostbynameR;
  calls.setsockopt = &HookedSetsockopt;
  calls.fcntl = &HookedFcntl;
  calls.fcntl64 = &HookedFcntl64;
  calls.ioctl = &HookedIoctl;
  return calls;
}

}  // namespace

void AttachHooks() {
  weft_hook_table* table = HookTable();
  if (table == nullptr) return;
  Libc();  // resolved before any call can come back through the hooks
  static const weft_hook_functions calls = EntryPoints();
  table->calls.store(&calls, std::memory_order_release);
}

}  // namespace weft::detail

namespace weft::hook {

bool Enabled() {
  const weft_hook_table* table = detail::HookTable();
  return table != nullptr && table->calls.load(std::memory_order_acquire) != nullptr;
}

}  // namespace weft::hook
