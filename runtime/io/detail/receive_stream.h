// Multishot receive for the io_uring socket engine: once a fiber's read of a
// TCP connection finds nothing to read, one standing IORING_OP_RECV request
// (multishot, into the ring's provided buffers, FileRing::ProvideBuffers)
// stays in its worker's ring and hands every chunk the kernel receives to
// the connection's ReceiveStream, so that a fiber that reads in a loop makes
// no submission and no system call per message: a read takes the bytes the
// stream holds, or waits for its next edge.
//
// The stream belongs to one generation of a connection
// (DescriptorState::receive_stream) and holds the bytes received but not yet
// taken, in order. The reaper copies each chunk out of its provided buffer
// and returns the buffer at once, so buffers never wait for a reader and a
// ring's destruction strands no bytes. Each chunk counts as a read edge: it
// advances the slot's edge count and wakes the first waiting read, as an
// epoll edge does (descriptor_table.h).
//
// Order: while a stream is armed (its request stands or is being cancelled)
// every read through weft::io takes from it and none reads the socket, so
// bytes reach readers once and in the order they arrived; a read reads the
// socket itself only once the stream holds nothing and its request ended.
//
// A stream stands while it holds fewer than 32 KiB nobody took: past that
// its request is cancelled, and further bytes wait in the kernel's socket
// buffer, whose bound pushes back on the sender as without a stream. (What
// the kernel received before the cancellation took effect is kept too: at
// most what the ring's provided buffers hold, 1 MiB.) A
// request that ends by itself (out of provided buffers, end of stream, an
// error) disarms the stream; an error it ended with is reported once, to the
// read that finds the bytes before it taken. The next read that finds the
// socket empty arms it again.
//
// Only TCP sockets get a stream (a Unix socket may carry descriptors, which
// a receive without ancillary data would drop), and only descriptors the
// syscall hooks have not seen (a hooked poll(2) asks the kernel, which knows
// nothing of a stream's bytes). While a stream is armed, RecvMsg gets no
// ancillary data. MSG_OOB and MSG_ERRQUEUE read separate queues and go to the
// socket.
//
// Everything here is guarded by the slot's lock, which the reaper takes for
// each completion (as for accept_stream.h).
#ifndef WEFT_RUNTIME_IO_DETAIL_RECEIVE_STREAM_H_
#define WEFT_RUNTIME_IO_DETAIL_RECEIVE_STREAM_H_

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>

#include "runtime/io/detail/standing_stream.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/file_ring.h"

namespace weft::detail {

// Whether multishot receives are in use: the io_uring socket engine is in
// use, the kernel has accepted them so far, and no test turned them off.
bool MultishotReceiveEnabled();
// Turns multishot receives on (or off) for connections armed from now on;
// for tests and benchmarks that compare them with one request per read.
void SetMultishotReceiveForTesting(bool enabled);

// Takes up to the bytes `iov` holds from what `slot`'s stream received (with
// MSG_PEEK in `flags`, copies without taking; with MSG_TRUNC, takes without
// copying). Any thread, with a use of the descriptor in generation
// `generation`. Returns the count taken (> 0); or -1 with errno, the error
// the stream's request ended with; or 0 when the stream holds nothing, with
// `*armed` set when its request stands or is being cancelled: the caller must
// then wait for its next read edge rather than read the socket.
ssize_t TakeReceived(DescriptorState& slot, std::uint32_t generation, const iovec* iov,
                     int iovcnt, int flags, bool* armed);

// After a read of connection `fd` (generation `generation` of `slot`) found
// nothing: makes sure a multishot receive stands in a ring, submitting one to
// `ring` (the calling fiber's worker's) if none does. kOneShot when the
// descriptor cannot have a stream (see above) or streams are not in use.
ArmResult ArmReceiveStream(DescriptorState& slot, std::uint32_t generation, int fd,
                           FileRing* ring);

// Detaches `slot`'s stream, if any, as its descriptor closes or its number is
// reused: drops the bytes it held and cancels its request.
void DetachReceiveStreamLocked(DescriptorState& slot) WEFT_REQUIRES(slot.lock);

// The bytes of memory `slot`'s stream has for what it holds (its buffer's
// capacity), 0 without a stream; for tests.
std::size_t ReceiveStreamFootprintForTesting(DescriptorState& slot);

// The syscall hooks reach `slot` (hooked_calls.cc): no stream is armed on it
// from now on, and one that stands is stopped; its bytes stay for the
// weft::io reads (which hooked blocking reads go through).
void RefuseReceiveStreams(DescriptorState& slot);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_RECEIVE_STREAM_H_
