#include "runtime/io/detail/descriptor_use.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <cstdint>

#include "runtime/detail/libc.h"
#include "runtime/io/detail/accept_stream.h"
#include "runtime/io/detail/receive_stream.h"

namespace weft::detail {
namespace {

std::int64_t SocketTimeoutNs(int fd, int option) {
  timeval value{};
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, option, &value, &len) != 0) return 0;
  return std::int64_t{value.tv_sec} * 1'000'000'000 + std::int64_t{value.tv_usec} * 1'000;
}

}  // namespace

IoPoller& PollerForCaller() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  if (detail::InFiber(worker)) return worker->group()->poller();
  return detail::FallbackPoller();
}

bool WaitsInRings(bool is_socket) {
  return is_socket && detail::SocketRingsEnabled() &&
         detail::InFiber(detail::CurrentWorker());
}

Waiter* CancelWaitersLocked(DescriptorState& slot) {
  // Pairs with the fence in Use::OnRing: either we see the request's ring,
  // or its fiber sees the descriptor closing (and cancels it itself).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (RingRequest* request : slot.ring_requests) {
    if (request == nullptr) continue;
    if (FileRing* ring = request->ring.load(std::memory_order_seq_cst))
      ring->Cancel(request);
  }
  detail::DetachAcceptStreamLocked(slot);
  detail::DetachReceiveStreamLocked(slot);
  Waiter* list = nullptr;
  for (WaitQueue& queue : slot.waiters) {
    Waiter* popped = queue.PopAll();
    while (popped != nullptr) {
      Waiter* next = popped->next;
      static_cast<IoWaiter*>(popped)->cancelled = true;
      popped->next = list;
      list = popped;
      popped = next;
    }
  }
  return list;
}

int OpenSlot(int fd, DescriptorState& slot, bool is_socket, bool pollable, bool known_new,
             const UserView& view) {
  slot.lock.lock();
  const std::uint64_t word = slot.word.load(std::memory_order_relaxed);
  if ((word & DescriptorState::kOpen) != 0 && !known_new) {
    slot.lock.unlock();
    return 0;  // another call opened it first
  }
  Waiter* stale = CancelWaitersLocked(slot);
  if (slot.poller != nullptr) {
    // The old descriptor's registration went with its open file; this only
    // corrects the count (the new one is not registered yet).
    slot.poller->Unregister(fd);
    slot.poller = nullptr;
  }
  const std::uint32_t generation = DescriptorState::GenerationOf(word) + 1;
  int error = 0;
  if (pollable && !WaitsInRings(is_socket)) {
    IoPoller& poller = PollerForCaller();
    error = poller.Register(fd, generation);
    if (error == 0) {
      slot.poller = &poller;
    } else if (error == EPERM) {
      pollable = false;  // epoll refuses it (a regular file): calls just run
      error = 0;
    }
  }
  if (error == 0) {
    slot.pollable = pollable;
    slot.receive_kind.store(0, std::memory_order_relaxed);
    slot.is_socket = is_socket;
    slot.user_nonblocking.store(view.nonblocking, std::memory_order_relaxed);
    slot.receive_timeout_ns.store(view.receive_timeout_ns, std::memory_order_relaxed);
    slot.send_timeout_ns.store(view.send_timeout_ns, std::memory_order_relaxed);
    slot.word.store((std::uint64_t{generation} << 32) | DescriptorState::kOpen,
                    std::memory_order_release);
  } else {
    slot.word.store(std::uint64_t{generation} << 32, std::memory_order_release);
  }
  slot.lock.unlock();
  WaitQueue::WakeAll(stale);
  return error;
}

int OpenExisting(int fd, DescriptorState& slot) {
  const int flags = Libc().fcntl(fd, F_GETFL, nullptr);
  if (flags < 0) return detail::Errno();
  struct stat st;
  if (fstat(fd, &st) != 0) return detail::Errno();
  const bool pollable = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
  UserView view;
  view.nonblocking = (flags & O_NONBLOCK) != 0;
  if (S_ISSOCK(st.st_mode)) {
    view.receive_timeout_ns = SocketTimeoutNs(fd, SO_RCVTIMEO);
    view.send_timeout_ns = SocketTimeoutNs(fd, SO_SNDTIMEO);
  }
  if (pollable && (flags & O_NONBLOCK) == 0 &&
      Libc().fcntl(
          fd, F_SETFL,
          reinterpret_cast<void*>(static_cast<std::intptr_t>(flags | O_NONBLOCK))) != 0) {
    return detail::Errno();
  }
  return OpenSlot(fd, slot, S_ISSOCK(st.st_mode), pollable, /*known_new=*/false, view);
}

void FinishClose(int fd, DescriptorState& slot, std::uint32_t generation) {
  slot.lock.lock();
  const std::uint64_t word = slot.word.load(std::memory_order_relaxed);
  if (DescriptorState::GenerationOf(word) == generation) {
    if (slot.poller != nullptr) {
      slot.poller->Unregister(fd);
      slot.poller = nullptr;
    }
    slot.word.store(std::uint64_t{generation} << 32, std::memory_order_release);
  }
  slot.lock.unlock();
  // Linux closes the descriptor even when close(2) reports EINTR.
  Libc().close(fd);
}

void ReleaseUse(int fd, DescriptorState& slot, std::uint32_t generation) {
  std::uint64_t word = slot.word.load(std::memory_order_relaxed);
  for (;;) {
    // A generation that changed under us was reopened behind weft's back.
    if (DescriptorState::GenerationOf(word) != generation ||
        (word & DescriptorState::kUsersMask) == 0) {
      return;
    }
    if (slot.word.compare_exchange_weak(word, word - 1, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
      break;
    }
  }
  const std::uint64_t left = word - 1;
  if ((left & DescriptorState::kClosing) != 0 && (left & DescriptorState::kUsersMask) == 0) {
    const int saved = Errno();
    FinishClose(fd, slot, generation);
    SetErrno(saved);
  }
}

}  // namespace weft::detail
