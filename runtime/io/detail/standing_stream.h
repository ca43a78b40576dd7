// What a listener's multishot accept (accept_stream.h) and a connection's
// multishot receive (receive_stream.h) share: one standing io_uring request
// per descriptor generation, submitted to the ring of the fiber that armed
// it, whose completions the reaper hands to the stream (under the slot's
// lock) and which readers take from the stream rather than from the kernel.
//
// Life: created and attached (a field of DescriptorState) by the first call
// that arms it; armed while its request stands in a ring. Close() (or the
// reuse of the number) detaches it and cancels the request. A request holds a
// use of its descriptor (descriptor_use.h), released by its last completion,
// so the number is closed only after the kernel let go of the file: a closed
// listener refuses connections, a closed connection is reset. Until then a
// detached stream is linked in DescriptorState::closing_streams, and Close()
// and the calls it cancelled wait there (AwaitDetachedStreams) for that last
// completion. The stream is freed once it is detached and not armed.
#ifndef WEFT_RUNTIME_IO_DETAIL_STANDING_STREAM_H_
#define WEFT_RUNTIME_IO_DETAIL_STANDING_STREAM_H_

#include <cstdint>

#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {

struct StandingStream : RingRequest {
  virtual ~StandingStream() = default;

  DescriptorState* slot = nullptr;
  // While armed, the request holds a use of the descriptor.
  int fd = -1;
  std::uint32_t generation = 0;
  // The rest is guarded by slot->lock.
  bool attached = true;      // the slot's field points to this stream
  bool armed = false;        // its request stands in a ring (or is being submitted)
  bool submitted = false;    // ... and was submitted: Close() may cancel it
  bool stopping = false;     // ... and is being cancelled
  FileRing* ring = nullptr;  // where it stands
  int pins = 0;              // calls that use it without the slot's lock
  // Detached while armed: linked in slot->closing_streams, where Close() and
  // the calls it cancelled wait in `closing_waiters` for its last completion.
  StandingStream* next_closing = nullptr;
  WaitQueue closing_waiters;

  bool Unused() const { return !attached && !armed && pins == 0; }
  // Its request stands and is not being cancelled.
  bool Stands() const { return armed && submitted && !stopping; }
};

// Whether multishot requests may be used (WEFT_IO_URING_MULTISHOT, read by
// StartRuntime); the tests' own switches are apart (accept_stream.h,
// receive_stream.h).
void AllowMultishot(bool allowed);
bool MultishotAllowed();

enum class ArmResult {
  kWait,     // a stream stands: wait for the descriptor's next read edge
  kClosed,   // the descriptor is closing
  kOneShot,  // no stream can be used: wait with a one-shot request
};

// Arms `slot`'s stream in `field` (creating it with `make()` if there is
// none) by submitting the request `prepare(sqe)` makes to `ring`, unless its
// request stands already. Call with a use of generation `generation` of `fd`.
template <class Stream, class Make, class Prepare>
ArmResult ArmStream(DescriptorState& slot, Stream* DescriptorState::*field,
                    std::uint32_t generation, int fd, FileRing* ring, Make&& make,
                    Prepare&& prepare);

// Cancels `stream`'s request unless other calls wait for its next read edge.
void StopStreamIfIdleLocked(DescriptorState& slot, StandingStream* stream)
    WEFT_REQUIRES(slot.lock);

// Detaches `stream` from `slot` (whose field the caller cleared): cancels its
// request and, while armed, links it in slot.closing_streams. Frees it when
// unused.
void DetachStreamLocked(DescriptorState& slot, StandingStream* stream)
    WEFT_REQUIRES(slot.lock);

// For a stream's last completion (the slot's lock held): disarms it and, if
// it was detached, unlinks it. Returns the callers waiting for its end, to be
// woken by FinishCompletion.
Waiter* EndStreamLocked(DescriptorState& slot, StandingStream* stream)
    WEFT_REQUIRES(slot.lock);

// After a completion was handled and the slot's lock released: frees
// `unused` (the stream, if the completion left it unused, else nullptr);
// after the last one, releases the request's use of generation `generation`
// of `fd` (closing it when no other use is left) and then wakes `closers`.
// The caller reads `fd` and `generation` under the lock: once it is
// released, Close() may free a stream the completion left in use only by
// Close() itself.
void FinishCompletion(DescriptorState& slot, int fd, std::uint32_t generation,
                      StandingStream* unused, bool last, Waiter* closers);

// Returns once no detached stream of generation `generation` of `slot`
// stands in a ring any more: the kernel has let go of the file and, with no
// other use left, the number is closed. Any thread or fiber.
void AwaitDetachedStreams(DescriptorState& slot, std::uint32_t generation);

template <class Stream, class Make, class Prepare>
ArmResult ArmStream(DescriptorState& slot, Stream* DescriptorState::*field,
                    std::uint32_t generation, int fd, FileRing* ring, Make&& make,
                    Prepare&& prepare) {
  slot.lock.lock();
  const std::uint64_t word = slot.word.load(std::memory_order_seq_cst);
  if (DescriptorState::GenerationOf(word) != generation ||
      (word & DescriptorState::kClosing) != 0) {
    slot.lock.unlock();
    return ArmResult::kClosed;
  }
  Stream* stream = slot.*field;
  if (stream == nullptr) {
    stream = make();
    stream->slot = &slot;
    stream->fd = fd;
    stream->generation = generation;
    slot.*field = stream;
  }
  if (stream->armed) {
    slot.lock.unlock();
    return ArmResult::kWait;
  }
  stream->armed = true;
  stream->submitted = false;
  stream->stopping = false;
  stream->ring = ring;
  ++stream->pins;
  // The request's use of the descriptor, released by its last completion.
  // The caller's own use keeps the count above zero here, so Close() cannot
  // have finished closing in between.
  slot.word.fetch_add(1, std::memory_order_acq_rel);
  slot.lock.unlock();
  ring->StartStanding(stream, prepare);
  slot.lock.lock();
  stream->submitted = true;
  --stream->pins;
  // Closed while the request was on its way: Close() left its cancellation
  // to us.
  const bool closed = !stream->attached;
  if (closed && stream->armed) ring->Cancel(stream);
  const bool unused = stream->Unused();
  slot.lock.unlock();
  if (unused) delete stream;
  return closed ? ArmResult::kClosed : ArmResult::kWait;
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_STANDING_STREAM_H_
