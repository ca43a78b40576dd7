// Multishot accept for the io_uring socket engine: once a fiber's Accept finds
// a listener's backlog empty, one standing IORING_OP_ACCEPT request (multishot)
// stays in its worker's ring and hands every connection the kernel accepts to
// the listener's AcceptStream, so that a server that accepts in a loop makes
// no submission per connection.
//
// The stream belongs to one generation of a listening descriptor
// (DescriptorState::accept_stream) and holds the connections accepted but not
// yet taken, in the order the kernel accepted them. Each one counts as a read
// edge of the listener: it advances the slot's edge count and wakes the first
// waiting Accept, exactly as an epoll edge does (descriptor_table.h), so
// fibers and plain threads that wait on the listener are served in order and
// no connection is handed to two callers or to none.
//
// A stream stands while its listener is being accepted on: an Accept that
// gives up waiting (its deadline passed) with no other call waiting cancels
// it, and so does the 32nd connection it holds that no call took. The next
// Accept that finds the backlog empty arms it again. So a listener nobody
// accepts on fills the kernel's backlog and pushes back on its clients, as it
// would without a stream.
//
// Life (standing_stream.h): Close() (or the reuse of the number) detaches it:
// the connections still queued are closed, as the kernel closes a backlog, and
// the standing request is cancelled; a connection the kernel delivers after
// that is closed too. Close() and the calls it cancelled return only after
// the request's last completion: until then the kernel holds the listening
// socket, which would still take connections.
// A request that ends by itself (an error such as EMFILE, or the ring's
// destruction at TerminateRuntime) disarms the stream and wakes a waiter,
// whose own accept(2) reports the error or finds the backlog empty and arms
// the stream again.
//
// Everything here is guarded by the slot's lock, which the reaper takes for
// each completion: the ring never runs these completions while its submit
// lock is held (file_ring.h), and Close() cancels under the slot's lock.
#ifndef WEFT_RUNTIME_IO_DETAIL_ACCEPT_STREAM_H_
#define WEFT_RUNTIME_IO_DETAIL_ACCEPT_STREAM_H_

#include "runtime/io/detail/standing_stream.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/file_ring.h"

namespace weft::detail {

// Whether multishot accept is in use: the io_uring socket engine is in use,
// the kernel has not refused a multishot accept, and no test turned it off.
bool MultishotAcceptEnabled();
// Turns multishot accept on (or off) for listeners armed from now on; for
// tests and benchmarks that compare it with one accept request per call.
void SetMultishotAcceptForTesting(bool enabled);

// A connection `slot`'s stream accepted and nobody took yet (its descriptor,
// the oldest), or -1. Any thread, with a use of the descriptor (a DescriptorUse)
// in generation `generation`. Sets `*stands` when the stream's request stands
// (not being cancelled): it drains the backlog, so a caller that got -1 may
// wait for its next edge without an accept(2) of its own.
int TakeAccepted(DescriptorState& slot, std::uint32_t generation, bool* stands);

// After accept(2) on listener `fd` (generation `generation` of `slot`) said
// EAGAIN: makes sure a multishot accept stands in a ring, submitting one to
// `ring` (the calling fiber's worker's) if none does.
ArmResult ArmAcceptStream(DescriptorState& slot, std::uint32_t generation, int fd,
                          FileRing* ring);

// An Accept on `slot` gave up waiting (its deadline passed): unless other
// calls wait, the stream's request is cancelled, so that a listener nobody
// accepts on leaves connections in the kernel's backlog.
void StopAcceptStreamIfIdle(DescriptorState& slot, std::uint32_t generation);

// Detaches `slot`'s stream, if any, as its descriptor closes or its number is
// reused: closes the connections it queued and cancels its standing request.
void DetachAcceptStreamLocked(DescriptorState& slot) WEFT_REQUIRES(slot.lock);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_ACCEPT_STREAM_H_
