// RuntimeOptions: every tuning knob of the runtime, in a header of its own so
// that the runtime's internals (which need the options but not the runtime's
// functions) stay below runtime/runtime.h. Include runtime/runtime.h.
#ifndef WEFT_RUNTIME_RUNTIME_OPTIONS_H_
#define WEFT_RUNTIME_RUNTIME_OPTIONS_H_

#include <cstddef>
#include <string>

namespace weft {

// Every tuning knob of the runtime. Defaults equal the gflags' defaults.
// Validate() (called by StartRuntime) throws std::invalid_argument naming the
// offending option and its accepted range.
struct RuntimeOptions {
  // Total FiberWorker threads. 0: one per CPU the process may run on
  // (its affinity mask, restricted by accessible_cpus). Accepted: 0..1024.
  std::size_t concurrency_hint = 0;
  // Workers per scheduling group. 0: automatic (all workers in one group up to
  // 15, otherwise even groups of 8..15). Accepted: 0 or 1..64.
  std::size_t scheduling_group_size = 0;
  // Keep each scheduling group within one NUMA node.
  bool numa_aware = true;
  // An idle worker (its group's queue empty) takes a fiber from another group
  // on its NUMA node on every n-th look for work, and once more before it goes
  // to sleep; a group whose workers are all busy wakes a sleeping worker of a
  // peer group when it queues a fiber. Stolen fibers move to the thief's group; fibers
  // started with scheduling_group_local are never stolen. 0 = never.
  std::size_t work_stealing_ratio = 16;
  // Same, for groups on other NUMA nodes. 0 = never (the default: a stolen
  // fiber's memory stays on the node it came from).
  std::size_t cross_numa_work_stealing_ratio = 0;
  // Capacity of each group's lock-free run queue; a power of two in
  // 2..16777216. A full queue loses nothing: extra fibers wait in an overflow
  // list that workers drain, counted in SchedulingGroupStats::run_queue_overflows.
  std::size_t run_queue_size = 65536;
  // Default fiber stack size in bytes, 16 KiB..1 GiB, rounded up to whole pages.
  std::size_t stack_size = 131072;
  // Put an inaccessible guard page below every fiber stack so that an overflow
  // faults instead of corrupting memory.
  bool stack_guard_page = true;
  // Hibernate fibers parked for at least this many milliseconds: copy the few
  // hundred bytes of stack each uses to a buffer of their size and give its
  // stack pages back to the kernel (docs/design.md, "Hibernating parked
  // fibers"), so that a parked fiber holds about 1 KiB instead of a page or
  // more. Invisible to the fiber: its stack keeps its addresses, and it wakes
  // on any worker. Waking a hibernated fiber costs a round trip to the
  // hibernator thread (about 20 µs). A fiber is hibernated between this and
  // twice this long after it parked. 0 = never (the default). Needs
  // userfaultfd (Linux 5.7+; root, vm.unprivileged_userfaultfd=1 or access to
  // /dev/userfaultfd): StartRuntime throws, saying so, when it is missing.
  // Only stacks mapped while it is on can hibernate. Accepted: 0..86400000.
  std::size_t hibernate_parked_fibers_after_ms = 0;
  // CPUs the workers may use, e.g. "0-7,9"; empty = every CPU in the process's
  // affinity mask. Must be a subset of that mask.
  std::string accessible_cpus;
  // Pin each worker to one CPU instead of letting it float over its group's CPUs.
  bool disallow_cpu_migration = false;
  // Optional hwloc synthetic topology, e.g. "pack:2 numa:1 core:8 pu:1", used
  // instead of the machine's so that layouts can be tested anywhere.
  std::string topology;
  // Every this many milliseconds, write DumpRuntimeStats() to standard error;
  // 0 = never. For watching a running service; 0..86400000.
  std::size_t stats_log_interval_ms = 0;
  // Chaos mode, for tests: every time a fiber is made ready (started, woken,
  // yielding) it is sent to a worker other than the one it last ran on, so that
  // code which wrongly relies on staying on one thread (caching a thread_local's
  // address, a thread id, errno, a pthread lock held across a wait) fails fast.
  // Fibers run slower. It has no effect in a scheduling group of one worker.
  // The environment variable WEFT_CHAOS_MIGRATION=1 turns it on for every
  // runtime the process starts, whatever the options say.
  bool chaos_migration = false;
  // How each scheduling group queues, picks and steals ready fibers and how
  // its idle workers sleep and wake (docs/tuning.md, "Scheduling policies"):
  // "weft" (a shared queue plus a local run stack per worker), "v1" (tRPC's
  // v1: the shared queue alone), "v2" (tRPC's v2 after Taskflow: a global
  // queue plus a work-stealing deque per worker and an eventcount for idle
  // workers). The environment variable
  // WEFT_SCHEDULING_POLICY, when set, overrides it for every runtime the
  // process starts (how the test suite runs under each policy).
  std::string scheduling_policy = "weft";
  // Most plain threads the blocking pool (runtime/blocking.h) runs at once.
  // The pool starts a thread when a task comes and none is idle, up to this
  // many; further tasks wait in FIFO order for a thread to come free. Each
  // thread has an ordinary thread stack (8 MiB of address space by default, of
  // which it touches what it uses). Accepted: 1..4096.
  std::size_t blocking_pool_max_threads = 64;
  // A pool thread that has had nothing to run for this many milliseconds exits;
  // the most recently idle thread is the next to get work, so a pool that grew
  // for a burst shrinks back once the burst is over. Accepted: 1..86400000.
  std::size_t blocking_pool_idle_timeout_ms = 10000;
  // How long weft::io::Resolve (runtime/io/resolve.h) keeps a successful answer
  // in milliseconds: lookups of the same name within this time are served from
  // the cache, without a query. Failures are not cached. 0 = no cache (lookups
  // made at the same time still share one query). Accepted: 0..86400000.
  std::size_t resolve_cache_ttl_ms = 5000;
  // The I/O engine: "auto", "epoll" or "io_uring". File calls
  // (runtime/io/file.h) go through a per-worker io_uring where the kernel
  // allows it ("auto", "io_uring"), otherwise ("epoll", or io_uring refused:
  // /proc/sys/kernel/io_uring_disabled, seccomp, no kernel support) they run on
  // the blocking pool; the runtime logs once which engine files use and why.
  // Socket calls of fibers (runtime/io/fd.h) wait in the workers' io_uring
  // with "io_uring" (when the kernel allows it), in the group's epoll poller
  // with "epoll" and "auto" (faster on the W11 and W12 workloads here:
  // docs/io.md). WEFT_IO_ENGINE, when set, overrides this for every runtime
  // the process starts. Anything else is rejected naming the accepted values.
  std::string io_engine = "auto";
  // Submission queue entries of each worker's io_uring (its completion queue
  // has twice as many). At most that many completions may be outstanding per
  // ring; a fiber that finds its worker's ring full waits for room, so nothing
  // is lost with any value. A power of two in 2..32768.
  std::size_t io_uring_entries = 256;

  // Options filled from the weft_* gflags. Never parses the command line.
  static RuntimeOptions FromFlags();
  // Throws std::invalid_argument if any option is out of range.
  void Validate() const;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_RUNTIME_OPTIONS_H_
