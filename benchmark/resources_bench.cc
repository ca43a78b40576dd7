// W7 and W8: what a runtime costs the machine while it does nothing: CPU time
// when idle, resident memory per parked fiber.
//
// Both are measured in a fresh child process of this program per contender
// (AddChildBody / RunInChildProcess), as the Go peer does: a process that has run
// other workloads keeps their pooled stacks and heap resident, which would make
// W8 look cheaper, and may have threads of its own running (Boost.Fiber's
// work_stealing pool spins), which would count in W7. The child runs only its
// body.
//
// W7: the runtime is started and used briefly (a batch of fibers that yield), so
// that every thread it starts in use is there; after 100 ms of quiet, the figure
// is the process's CPU time (getrusage, user + system, all threads) per wall
// second over 2 s in which nothing is asked of it. Peers: Boost.Fiber round_robin
// on one thread whose only fiber waits on a condition variable, and
// work_stealing on CpuCount() threads (whose schedulers spin when idle; the
// child runs before the parent starts a pool of its own, see showcase_main.cc,
// so no spinning pool in the parent takes CPUs from it); Go sleeps with its
// scheduler warmed up.
//
// W8: resident memory (/proc/self/statm) before, and after N fibers each blocked
// on one latch, per fiber. A fiber counts itself just before it blocks; once the
// count is N, weft's figure also waits for every worker to go to sleep, which
// none does while a fiber is still on its way into the wait. Everything a parked
// fiber holds counts: its stack pages, its control block, its wait-queue entry.
// Page tables are not in the resident set, for any contender (for weft's 128 KiB
// stacks about 265 bytes a fiber), nor is kernel memory. Peers: std::thread at
// a scale threads reach (2,000 threads blocked on a std::condition_variable;
// their 8 MiB stacks are virtual, what they touch counts; their kernel stacks
// and task structs do not), Boost.Fiber round_robin with N fibers blocked on a
// boost::fibers::condition_variable, on its default stacks, and Go with N
// goroutines parked on a channel receive.
//
// W8-long: the same, for fibers parked for long, which weft hibernates
// (RuntimeOptions::hibernate_parked_fibers_after_ms; docs/design.md,
// "Hibernating parked fibers"): the figure is taken once every fiber is
// hibernated, with the hibernator's own passes (100 ms threshold). Go keeps a
// parked goroutine the same however long it waits: its row is W8's figure.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"

namespace weft::showcase {

namespace {

using Clock = std::chrono::steady_clock;

const Workload kIdle{
    "W7", "idle", {{Target::Kind::kAtMost, 5.0}}, /*is_floor=*/false, "cpu-ms/s"};
const Workload kParked{"W8",
                       "parked fiber",
                       {{Target::Kind::kAtMost, 6144}},
                       /*is_floor=*/false,
                       "bytes/fiber"};
const Workload kParkedLong{"W8-long",
                           "parked for long",
                           {{Target::Kind::kAtMost, 1536}},
                           /*is_floor=*/false,
                           "bytes/fiber"};
// The threshold of W8-long's hibernation.
constexpr std::size_t kParkedLongAfterMs = 100;

double IdleSeconds(const Scale& scale) {
  if (scale.smoke) return 0.1;
  return scale.quick ? 0.5 : 2.0;
}
std::int64_t ParkedFibers(const Scale& scale) {
  if (scale.smoke) return 1'000;
  return scale.quick ? 20'000 : 100'000;
}
std::int64_t ParkedThreads(const Scale& scale) {
  if (scale.smoke) return 50;
  return scale.quick ? 500 : 2'000;
}

// Fibers started to warm a runtime up before W7, each yielding a few times.
constexpr int kWarmUpFibers = 1'000;
constexpr int kWarmUpYields = 10;
// The quiet before W7's measurement: longer than any spin before sleeping.
constexpr auto kSettle = std::chrono::milliseconds(100);
// How long a child waits for its fibers or threads to park before giving up.
constexpr auto kParkTimeout = std::chrono::seconds(60);

RuntimeOptions OneWorkerPerCpu() {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  return options;
}

// Ends the child process with `figure`, printed as RunChild() prints a body's
// result, without unwinding what the body left running.
[[noreturn]] void ChildEndsWith(double figure) {
  std::printf("%.17g\n", figure);
  std::fflush(stdout);
  std::_Exit(0);
}

double ProcessCpuMilliseconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

// After the quiet of kSettle: the process's CPU milliseconds per wall second
// while this thread sleeps `seconds`.
double MeasureIdleCost(double seconds) {
  std::this_thread::sleep_for(kSettle);
  const double cpu_before = ProcessCpuMilliseconds();
  const Clock::time_point wall_before = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double cpu_after = ProcessCpuMilliseconds();
  const std::chrono::duration<double> wall = Clock::now() - wall_before;
  return (cpu_after - cpu_before) / wall.count();
}

double IdleCostOfWeft(double seconds) {
  Runtime runtime(OneWorkerPerCpu());
  FiberLatch done(kWarmUpFibers);
  for (int i = 0; i < kWarmUpFibers; ++i) {
    if (!StartFiberDetached([&done] {
          for (int n = 0; n < kWarmUpYields; ++n) this_fiber::Yield();
          done.CountDown();
        })) {
      ChildFails("StartFiberDetached() failed");
    }
  }
  done.Wait();
  return MeasureIdleCost(seconds);
}

void WarmUpBoostFibers() {
  std::vector<boost::fibers::fiber> fibers;
  fibers.reserve(kWarmUpFibers);
  for (int i = 0; i < kWarmUpFibers; ++i) {
    fibers.emplace_back([] {
      for (int n = 0; n < kWarmUpYields; ++n) boost::this_fiber::yield();
    });
  }
  for (boost::fibers::fiber& fiber : fibers) fiber.join();
}

// One thread whose round_robin scheduler has a single fiber, blocked on a
// condition variable until the measurement is over.
double IdleCostOfBoostFiber(double seconds) {
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable cv;
  bool stopping = false;
  std::promise<void> warmed_up;
  std::thread thread([&] {
    WarmUpBoostFibers();
    warmed_up.set_value();
    boost::fibers::fiber([&] {
      std::unique_lock<boost::fibers::mutex> lock(mutex);
      cv.wait(lock, [&] { return stopping; });
    }).join();
  });
  // The warm-up faults in a thousand stacks: it may take longer than kSettle.
  warmed_up.get_future().wait();
  const double cost = MeasureIdleCost(seconds);
  {
    std::lock_guard<boost::fibers::mutex> lock(mutex);
    stopping = true;
  }
  cv.notify_one();
  thread.join();
  return cost;
}

double IdleCostOfBoostFiberWorkStealing(double seconds) {
  BoostWorkStealingPool::Get().Run(WarmUpBoostFibers);
  const double cost = MeasureIdleCost(seconds);
  BoostWorkStealingPool::ShutDown();
  return cost;
}

std::int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size_pages = 0;
  std::int64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages))
    ChildFails("cannot read /proc/self/statm");
  return resident_pages * sysconf(_SC_PAGESIZE);
}

// The resident bytes that `park_all` adds per waiter: it returns once `waiters`
// waiters are parked. `release_all` then lets them go.
template <class ParkAll, class ReleaseAll>
double ResidentBytesPerParked(std::int64_t waiters, ParkAll&& park_all,
                              ReleaseAll&& release_all) {
  const std::int64_t before = ResidentBytes();
  park_all();
  const std::int64_t after = ResidentBytes();
  release_all();
  return static_cast<double>(after - before) / static_cast<double>(waiters);
}

// Polls `done` every millisecond, up to kParkTimeout; `what` names what did not
// happen in time.
template <class Done>
void AwaitOrFail(Done&& done, const char* what) {
  const Clock::time_point deadline = Clock::now() + kParkTimeout;
  while (!done()) {
    if (Clock::now() > deadline) ChildFails(what);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// True when every worker sleeps (has gone to sleep more often than it was
// woken): none is still taking a fiber into its wait.
bool AllWorkersAsleep() {
  for (const SchedulingGroupStats& group : GetRuntimeStats().scheduling_groups) {
    for (const WorkerStats& worker : group.workers) {
      if (worker.sleeps <= worker.wakeups) return false;
    }
  }
  return true;
}

double ParkedMemoryOfWeft(std::int64_t fibers, bool hibernate) {
  // Declared before the runtime: they outlive every fiber.
  FiberLatch release(1);
  std::atomic<std::int64_t> parked{0};
  RuntimeOptions options = OneWorkerPerCpu();
  if (hibernate) options.hibernate_parked_fibers_after_ms = kParkedLongAfterMs;
  Runtime runtime(options);
  return ResidentBytesPerParked(
      fibers,
      [&] {
        for (std::int64_t i = 0; i < fibers; ++i) {
          if (!StartFiberDetached([&] {
                parked.fetch_add(1, std::memory_order_relaxed);
                release.Wait();
              })) {
            ChildFails("StartFiberDetached() failed after " + std::to_string(i) +
                       " fibers");
          }
        }
        AwaitOrFail([&] { return parked.load(std::memory_order_relaxed) == fibers; },
                    "the fibers did not all park");
        AwaitOrFail(AllWorkersAsleep, "the workers did not go to sleep");
        if (hibernate) {
          AwaitOrFail(
              [&] {
                return GetRuntimeStats().hibernation.hibernated_now ==
                       static_cast<std::uint64_t>(fibers);
              },
              "the fibers did not all hibernate");
        }
      },
      // ~Runtime() then waits for every fiber to end.
      [&] { release.CountDown(); });
}

double ParkedMemoryOfThreads(std::int64_t threads) {
  std::mutex mutex;
  std::condition_variable cv;
  std::int64_t parked = 0;
  bool released = false;
  std::vector<std::thread> waiters;
  waiters.reserve(threads);
  return ResidentBytesPerParked(
      threads,
      [&] {
        for (std::int64_t i = 0; i < threads; ++i) {
          try {
            waiters.emplace_back([&] {
              std::unique_lock<std::mutex> lock(mutex);
              ++parked;
              cv.wait(lock, [&] { return released; });
            });
          } catch (const std::system_error& e) {
            ChildFails("thread " + std::to_string(i) + ": " + e.what());
          }
        }
        // A thread lets go of the mutex only inside its wait.
        AwaitOrFail(
            [&] {
              std::lock_guard<std::mutex> lock(mutex);
              return parked == threads;
            },
            "the threads did not all park");
      },
      [&] {
        {
          std::lock_guard<std::mutex> lock(mutex);
          released = true;
        }
        cv.notify_all();
        for (std::thread& waiter : waiters) waiter.join();
      });
}

// On this thread's round_robin scheduler: while the main fiber yields, every
// other fiber runs until it blocks. The fibers are never released: Boost.Fiber
// frees each default (malloc'd, so mmapped) stack with its own munmap, which
// here costs about 190 µs, splitting the one mapping the kernel merged them
// into: 20 s for 100k fibers, none of it part of the figure. The child ends
// instead, and the kernel tears the address space down in one go.
[[noreturn]] void ParkedMemoryOfBoostFiber(std::int64_t fibers) {
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable cv;
  std::int64_t parked = 0;
  ChildEndsWith(ResidentBytesPerParked(
      fibers,
      [&] {
        for (std::int64_t i = 0; i < fibers; ++i) {
          boost::fibers::fiber([&] {
            std::unique_lock<boost::fibers::mutex> lock(mutex);
            ++parked;
            cv.wait(lock, [] { return false; });
          }).detach();
        }
        while (parked < fibers) boost::this_fiber::yield();
      },
      [] {}));
}

}  // namespace

void AddResourceMeasurements(const Scale& scale) {
  const double seconds = IdleSeconds(scale);
  AddChildMeasurement(kIdle, Contender::kWeft, scale,
                      [seconds] { return IdleCostOfWeft(seconds); });
  AddChildMeasurement(kIdle, Contender::kBoostFiber, scale,
                      [seconds] { return IdleCostOfBoostFiber(seconds); });
  AddChildMeasurement(kIdle, Contender::kBoostFiberWorkStealing, scale,
                      [seconds] { return IdleCostOfBoostFiberWorkStealing(seconds); });
  char go_seconds[32];
  std::snprintf(go_seconds, sizeof(go_seconds), "-w7_seconds=%g", seconds);
  AddGoMeasurement(kIdle, "W7", "W7", go_seconds);

  const std::int64_t fibers = ParkedFibers(scale);
  const std::int64_t threads = ParkedThreads(scale);
  AddChildMeasurement(kParked, Contender::kWeft, scale,
                      [fibers] { return ParkedMemoryOfWeft(fibers, /*hibernate=*/false); });
  AddChildMeasurement(kParked, Contender::kThreads, scale,
                      [threads] { return ParkedMemoryOfThreads(threads); });
  AddChildMeasurement(kParked, Contender::kBoostFiber, scale,
                      [fibers]() -> double { ParkedMemoryOfBoostFiber(fibers); });
  AddGoMeasurement(kParked, "W8", "W8", "-w8_n=" + std::to_string(fibers));

  AddChildMeasurement(kParkedLong, Contender::kWeft, scale,
                      [fibers] { return ParkedMemoryOfWeft(fibers, /*hibernate=*/true); });
  AddGoMeasurement(kParkedLong, "W8", "W8", "-w8_n=" + std::to_string(fibers));
}

}  // namespace weft::showcase
