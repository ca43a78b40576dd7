// Operations on the calling fiber. Each also works on a plain thread, where it
// acts on the thread.
#ifndef WEFT_RUNTIME_THIS_FIBER_H_
#define WEFT_RUNTIME_THIS_FIBER_H_

#include <cstdint>

namespace weft::this_fiber {

// Lets other ready fibers of the scheduling group run; the caller is queued
// behind them. Returns at once, without touching the run queue, when no other
// fiber is ready. On a plain thread: std::this_thread::yield().
void Yield();

// A non-zero id, unique among live fibers (ids are never reused in a process).
// 0 on a plain thread.
std::uint64_t GetId();

}  // namespace weft::this_fiber

#endif  // WEFT_RUNTIME_THIS_FIBER_H_
