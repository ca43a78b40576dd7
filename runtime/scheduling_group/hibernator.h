// Hibernation: giving the stack pages of fibers parked for long back to the
// kernel, so that millions of parked fibers fit in memory.
//
// A parked fiber uses well under a page of its stack, but keeps at least the
// page it parked in resident. The hibernator, one thread per process while
// RuntimeOptions::hibernate_parked_fibers_after_ms is set, walks the stack
// records (stack_pool.h) every so often; a fiber it finds parked twice in the
// same park, the threshold apart, it hibernates:
//   1. write-protect the stack (userfaultfd), so that nothing can change it,
//      and check that the fiber is still in that park;
//   2. copy the bytes in use, from the fiber's saved stack pointer to the top
//      (its control block, callable and frames), to a buffer of their size;
//   3. give every page of the stack back (MADV_DONTNEED), and map the kernel's
//      zero page below the bytes in use.
// The address range stays reserved, so every pointer into the stack stays
// valid. The first touch of a page given back, by anyone (a waker unlinking the
// fiber's Waiter, another fiber writing to a local it was passed, the worker
// that resumes the fiber on any thread), faults to the hibernator, which copies
// the bytes back into place in one ioctl and lets the toucher go on: the fiber
// wakes on whatever worker the scheduler picks, errno and FiberLocal included
// (both live off the stack or in saved frames). Touches during step 1-3 wait
// until the copy is back.
//
// Costs: nothing on the switch path (the park count is a plain store); each
// hibernation about 9 µs of the hibernator's time, each wake of a hibernated
// fiber one round trip to the hibernator (about 20 µs here); see
// docs/design.md, "Hibernating parked fibers".
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_HIBERNATOR_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_HIBERNATOR_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/runtime_stats.h"

namespace weft::detail {

using weft::HibernationStats;

// Whether this process can hibernate fibers (it can open a userfaultfd that
// write-protects anonymous memory); if not, *why says what to change.
bool HibernationSupported(std::string* why);

// Starts the hibernator: stacks mapped from now on can be hibernated, and
// fibers parked on them for at least `after` (> 0) are, within about `after`
// more. Returns false and sets *why when the process cannot (no userfaultfd).
bool StartHibernation(std::chrono::milliseconds after, std::string* why);

// Puts every hibernated stack back, stops the hibernator and forgets the
// stacks' registrations. Does nothing when it is not running.
void StopHibernation();

// Runs one pass now, treating fibers parked for at least `min_parked` as parked
// for long, and returns how many stacks it hibernated; 0 when the hibernator is
// not running. A fiber must have been seen parked by an earlier pass unless
// `min_parked` is 0. For tests and benchmarks.
std::size_t HibernateParkedFibers(std::chrono::milliseconds min_parked);

// The counters of RuntimeStats::hibernation, zero when it is not running.
void FillHibernationStats(HibernationStats* stats);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_HIBERNATOR_H_
