#include "runtime/io/detail/receive_stream.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "runtime/detail/errno.h"
#include "runtime/io/detail/descriptor_use.h"

namespace weft::detail {

// The most bytes a stream holds that no call took before its request is
// cancelled (the kernel's socket buffer then holds the rest).
constexpr std::size_t kMaxHeldBytes = 32 * 1024;

struct ReceiveStream : StandingStream {
  // Guarded by slot->lock: the bytes received and not taken are
  // bytes[head, size).
  std::vector<char> bytes;
  std::size_t head = 0;
  // The error the request ended with, for the read that empties `bytes`.
  int error = 0;

  std::size_t held() const { return bytes.size() - head; }
};

namespace {

std::atomic<bool> refused_by_kernel{false};
std::atomic<bool> disabled_for_testing{false};

// The reaper's call for each completion of a stream's multishot receive.
Waiter* OnCompletion(RingRequest* request, int result, unsigned flags) {
  auto* stream = static_cast<ReceiveStream*>(request);
  DescriptorState& slot = *stream->slot;
  const bool last = (flags & IORING_CQE_F_MORE) == 0;
  Waiter* woken = nullptr;
  Waiter* closers = nullptr;
  slot.lock.lock();
  FileRing* ring = stream->ring;
  if ((flags & IORING_CQE_F_BUFFER) != 0) {
    if (stream->attached && result > 0) {
      const char* data = ring->ProvidedBuffer(flags);
      stream->bytes.insert(stream->bytes.end(), data, data + result);
    }
    ring->ReturnBuffer(flags);
  }
  if (last) {
    closers = EndStreamLocked(slot, stream);
    // A connected socket and buffers in place: EINVAL is a kernel without
    // multishot receives (before 6.0).
    if (result == -EINVAL) refused_by_kernel.store(true, std::memory_order_relaxed);
    // Ends that the next read of the socket sees again (the end of the
    // stream) or that are no error of the connection's are not kept.
    if (result < 0 && result != -ENOBUFS && result != -ECANCELED && result != -EINVAL &&
        result != -EAGAIN && result != -EINTR && stream->attached) {
      stream->error = -result;
    }
  }
  if (stream->attached) {
    if (!last && !stream->stopping && stream->held() >= kMaxHeldBytes) {
      stream->stopping = true;
      ring->Cancel(stream);
    }
    // Bytes, or the end of the request: an edge for the waiters.
    if (result > 0 || last) {
      slot.edges[0].fetch_add(1, std::memory_order_release);
      woken = slot.waiters[0].PopFront();
    }
  }
  // Read under the lock: once it is released Close() may free the stream.
  const int fd = stream->fd;
  const std::uint32_t generation = stream->generation;
  StandingStream* const unused = stream->Unused() ? stream : nullptr;
  slot.lock.unlock();
  FinishCompletion(slot, fd, generation, unused, last, closers);
  return woken;
}

// Whether `fd` may get a stream (DescriptorState::receive_kind), found out
// on first need.
bool MayHaveStreamLocked(DescriptorState& slot, int fd) WEFT_REQUIRES(slot.lock) {
  if (slot.receive_kind.load(std::memory_order_relaxed) == 0) {
    int protocol = 0;
    socklen_t len = sizeof(protocol);
    const bool tcp = slot.is_socket &&
                     getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
                     protocol == IPPROTO_TCP;
    slot.receive_kind.store(tcp ? 1 : -1, std::memory_order_relaxed);
  }
  return slot.receive_kind.load(std::memory_order_relaxed) > 0;
}

}  // namespace

bool MultishotReceiveEnabled() {
  return SocketRingsEnabled() && MultishotAllowed() &&
         !refused_by_kernel.load(std::memory_order_relaxed) &&
         !disabled_for_testing.load(std::memory_order_relaxed);
}

void SetMultishotReceiveForTesting(bool enabled) {
  disabled_for_testing.store(!enabled, std::memory_order_relaxed);
}

ssize_t TakeReceived(DescriptorState& slot, std::uint32_t generation, const iovec* iov,
                     int iovcnt, int flags, bool* armed) {
  *armed = false;
  if (!slot.has_receive_stream.load(std::memory_order_acquire)) return 0;
  ssize_t taken = 0;
  int error = 0;
  slot.lock.lock();
  ReceiveStream* stream = slot.receive_stream;
  if (stream != nullptr && HoldsOpen(slot, generation)) {
    std::size_t at = stream->head;
    const std::size_t end = stream->bytes.size();
    for (int i = 0; i < iovcnt && at < end; ++i) {
      const std::size_t n = std::min(iov[i].iov_len, end - at);
      if ((flags & MSG_TRUNC) == 0)
        std::memcpy(iov[i].iov_base, stream->bytes.data() + at, n);
      at += n;
    }
    taken = static_cast<ssize_t>(at - stream->head);
    if ((flags & MSG_PEEK) == 0) {
      stream->head = at;
      if (stream->head == end) {
        stream->bytes.clear();
        stream->head = 0;
      } else if (stream->head >= 4096 && stream->head * 2 >= end) {
        // A reader that never quite catches up: drop the bytes taken, so
        // that the buffer stays about the size of what it holds.
        stream->bytes.erase(
            stream->bytes.begin(),
            stream->bytes.begin() + static_cast<std::ptrdiff_t>(stream->head));
        stream->head = 0;
      }
    }
    if (taken == 0 && stream->error != 0) {
      error = stream->error;
      if ((flags & MSG_PEEK) == 0) stream->error = 0;
    }
    *armed = stream->armed;
  }
  slot.lock.unlock();
  if (error != 0) {
    SetErrno(error);
    return -1;
  }
  return taken;
}

ArmResult ArmReceiveStream(DescriptorState& slot, std::uint32_t generation, int fd,
                           FileRing* ring) {
  if (!MultishotReceiveEnabled()) return ArmResult::kOneShot;
  slot.lock.lock();
  const bool may = MayHaveStreamLocked(slot, fd);
  slot.lock.unlock();
  if (!may || !ring->ProvideBuffers()) return ArmResult::kOneShot;
  return ArmStream(
      slot, &DescriptorState::receive_stream, generation, fd, ring,
      [&slot] {
        auto* stream = new ReceiveStream;
        stream->on_completion = &OnCompletion;
        stream->standing = RingRequest::Standing::kReceive;
        slot.has_receive_stream.store(true, std::memory_order_release);
        return stream;
      },
      [&](io_uring_sqe* sqe) {
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = FileRing::kProvidedGroup;
      });
}

void DetachReceiveStreamLocked(DescriptorState& slot) {
  ReceiveStream* stream = slot.receive_stream;
  if (stream == nullptr) return;
  slot.receive_stream = nullptr;
  slot.has_receive_stream.store(false, std::memory_order_release);
  stream->bytes.clear();
  stream->head = 0;
  DetachStreamLocked(slot, stream);
}

std::size_t ReceiveStreamFootprintForTesting(DescriptorState& slot) {
  slot.lock.lock();
  const std::size_t bytes =
      slot.receive_stream != nullptr ? slot.receive_stream->bytes.capacity() : 0;
  slot.lock.unlock();
  return bytes;
}

void RefuseReceiveStreams(DescriptorState& slot) {
  if (slot.receive_kind.load(std::memory_order_relaxed) < 0) return;
  slot.lock.lock();
  slot.receive_kind.store(-1, std::memory_order_relaxed);
  ReceiveStream* stream = slot.receive_stream;
  if (stream != nullptr && stream->Stands()) {
    stream->stopping = true;
    stream->ring->Cancel(stream);
  }
  slot.lock.unlock();
}

}  // namespace weft::detail
