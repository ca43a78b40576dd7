// What weft::io knows about each file descriptor, found by its number in O(1)
// for any number the process can open.
//
// A descriptor's life in weft: unknown (never used through weft::io) -> open
// (non-blocking, registered with a poller, edge-triggered) -> closing (Close
// was called: waiters are cancelled, new calls fail with EBADF) -> closed by
// the last call still using it, which makes the slot unknown again. Each
// opening starts a new *generation*, carried in every readiness event
// (io_poller.h), so that a number reused after a close never receives an event,
// a wake-up or a cancellation meant for the descriptor it had before.
//
// Readiness is a count of edges per direction plus a FIFO of waiters (fibers
// or plain threads, wait_queue.h), under the slot's spinlock:
// - a caller reads the direction's count, then tries its system call, and
//   waits only on EAGAIN: it takes the lock, and if the count moved (an edge
//   arrived since it started its call) tries again; otherwise it parks;
// - the poller, on an edge, advances the count and wakes the first waiter of
//   the direction;
// - a waiter woken by an edge, once its system call has completed, wakes the
//   next waiter of its direction, if any, who tries in turn: an edge is
//   reported once, and it may have made room for more than one caller.
// So no edge is lost, and an edge costs one wake-up however many wait.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_DESCRIPTOR_TABLE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_DESCRIPTOR_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/thread_annotations.h"

namespace weft::detail {

class IoPoller;
struct RingRequest;
struct StandingStream;  // runtime/io/detail/standing_stream.h
struct AcceptStream;    // runtime/io/detail/accept_stream.h
struct ReceiveStream;   // runtime/io/detail/receive_stream.h

enum class IoDirection : std::uint8_t { kRead = 0, kWrite = 1 };

// A parked caller of weft::io. `cancelled` is set (under the slot's lock) by
// Close and by the reopening of a number whose descriptor was closed behind
// weft's back.
struct IoWaiter : Waiter {
  bool cancelled = false;
};

struct DescriptorState {
  // The lifecycle word: generation in the high 32 bits, then kOpen, kClosing
  // and the count of calls using the descriptor. Changes of generation and of
  // kOpen happen under `lock`; calls come and go with compare-and-swap.
  static constexpr std::uint64_t kOpen = std::uint64_t{1} << 31;
  static constexpr std::uint64_t kClosing = std::uint64_t{1} << 30;
  static constexpr std::uint64_t kUsersMask = kClosing - 1;
  static std::uint32_t GenerationOf(std::uint64_t word) {
    return static_cast<std::uint32_t>(word >> 32);
  }

  std::atomic<std::uint64_t> word{0};

  Spinlock lock;
  // Edges seen per direction: advanced under `lock`, read without it before a
  // system call and under it before parking.
  std::atomic<std::uint32_t> edges[2] = {0, 0};
  WaitQueue waiters[2] WEFT_GUARDED_BY(lock);
  // Where the descriptor is registered: a scheduling group's poller or the
  // fallback poller (io_poller.h); null for a descriptor that cannot be polled
  // (a regular file), whose calls simply block. A group that stops moves its
  // registrations to the fallback poller first, so this is never dangling.
  IoPoller* poller WEFT_GUARDED_BY(lock) = nullptr;
  // With the io_uring socket engine (file_ring.h): the one request per
  // direction a fiber has in a worker's ring for this descriptor, which
  // Close() cancels; other calls of that direction queue in `waiters`.
  RingRequest* ring_requests[2] WEFT_GUARDED_BY(lock) = {nullptr, nullptr};
  // With the io_uring socket engine, a listener's multishot accept and the
  // connections it accepted that no call took yet.
  AcceptStream* accept_stream WEFT_GUARDED_BY(lock) = nullptr;
  // With the io_uring socket engine, a connection's multishot receive and the
  // bytes it received that no call took yet.
  ReceiveStream* receive_stream WEFT_GUARDED_BY(lock) = nullptr;
  // Whether receive_stream is set, for reads that look without the lock (on
  // the epoll engine a read never takes the lock for it).
  std::atomic<bool> has_receive_stream{false};
  // Whether the descriptor may get a receive stream: 0 not known yet (set at
  // each opening), 1 a TCP socket, -1 not (another kind, or the syscall hooks
  // use it). Written under `lock`.
  std::atomic<std::int8_t> receive_kind{0};
  // Streams that Close() (or the reuse of the number) detached while their
  // request still stood: the kernel holds the file until each one's last
  // completion, which Close() and the calls it cancelled wait for.
  StandingStream* closing_streams WEFT_GUARDED_BY(lock) = nullptr;
  // Set when the descriptor is opened (under `lock`, before kOpen is
  // published); read by the calls that use it.
  bool pollable = false;
  bool is_socket = false;
  // What the syscall hooks (hook/) show the user of a descriptor weft made
  // non-blocking: whether the user asked for non-blocking calls (then the
  // hooked calls fail with EAGAIN as the C library's would), and the
  // SO_RCVTIMEO / SO_SNDTIMEO the user set (nanoseconds, 0 = none), which the
  // hooked calls turn into deadlines. Set when the descriptor is opened (from
  // its flags and options as weft found them) and by the hooked fcntl, ioctl
  // and setsockopt.
  std::atomic<bool> user_nonblocking{false};
  std::atomic<std::int64_t> receive_timeout_ns{0};
  std::atomic<std::int64_t> send_timeout_ns{0};
};

// The slot of descriptor `fd` (>= 0), created on first use. Slots are never
// freed.
DescriptorState& DescriptorSlot(int fd);
// The slot if it was ever created, else nullptr.
DescriptorState* FindDescriptorSlot(int fd);
// How many calls wait on `fd` right now (both directions, in the poller's
// queues or in a ring); for tests and debugging.
std::size_t WaitersOn(int fd);
// Calls `visit(fd, slot, context)` for every slot created so far.
void ForEachDescriptorSlot(void (*visit)(int fd, DescriptorState& slot, void* context),
                           void* context);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_DESCRIPTOR_TABLE_H_
