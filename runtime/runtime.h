// Lifecycle and configuration of the weft fiber runtime.
//
//   weft::Runtime runtime;            // StartRuntime(RuntimeOptions::FromFlags())
//   weft::StartFiberDetached([] { ... });
//   // ~Runtime(): TerminateRuntime() waits for every fiber, then stops.
//
// Start/terminate may be repeated in one process, but not overlapped: calling
// StartRuntime() while a runtime is running aborts with a message. All functions
// here are thread-safe unless noted.
#ifndef WEFT_RUNTIME_RUNTIME_H_
#define WEFT_RUNTIME_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>

#include "runtime/runtime_options.h"
#include "runtime/runtime_stats.h"

namespace weft {

// GetRuntimeStats() as text, one line per scheduling group and one per worker,
// and one for the blocking pool:
//   weft stats: 2 scheduling groups, 4 workers, 12 fibers alive
//   group 0 (NUMA node 0): alive 7 created 1200 finished 1193 ...
//     worker 0: created 600 finished 598 switches 5201 spins 40 ...
//   blocking pool: threads 3 (max 64, peak 9) idle 1 queued 0 tasks-run 812 ...
// Safe from fibers and plain threads; prints "weft stats: not running" when the
// runtime is not running.
void DumpRuntimeStats(std::ostream& out);

// Starts FiberWorker threads as `options` describe. Throws std::invalid_argument
// for invalid options before any thread starts. Aborts if already running.
void StartRuntime(const RuntimeOptions& options = RuntimeOptions::FromFlags());

// Waits for every fiber that is running, ready or blocked to finish, then stops
// all workers. Fibers blocked forever make it wait forever (like joining a thread
// that never ends). Must not be called from a fiber. No-op if not running.
void TerminateRuntime();

// RAII: the constructor starts the runtime, the destructor terminates it.
class Runtime {
 public:
  explicit Runtime(const RuntimeOptions& options = RuntimeOptions::FromFlags()) {
    StartRuntime(options);
  }
  ~Runtime() { TerminateRuntime(); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
};

// Number of scheduling groups of the running runtime; 0 when it is not running.
std::size_t GetSchedulingGroupCount();

// How the running runtime laid out its workers: one line for the totals, one
// per scheduling group (NUMA node, workers, CPUs they may run on), and the
// stealing ratios and queue/stack sizes, e.g.
//   16 workers in 2 scheduling groups on 2 NUMA nodes (this machine, CPUs 0-15)
//     group 0: NUMA node 0, 8 workers, on CPUs 0-7
//     group 1: NUMA node 1, 8 workers, on CPUs 8-15
//   work stealing: within a NUMA node on every 16th look for work; across ...
// Empty when the runtime is not running.
std::string DescribeLayout();
// The layout StartRuntime(options) would choose on this machine, without
// starting anything. Throws std::invalid_argument as StartRuntime would.
std::string DescribeLayout(const RuntimeOptions& options);

// True on a FiberWorker thread (inside a fiber or the worker's scheduler loop).
bool IsRunningInFiberWorker();

// A snapshot of the counters, the blocking pool's (runtime/blocking.h)
// included; empty (all zero) when the runtime is not running.
RuntimeStats GetRuntimeStats();

}  // namespace weft

#endif  // WEFT_RUNTIME_RUNTIME_H_
