// weft_blocking_bench: N fibers (1000) each call RunBlocking on a callable that
// sleeps for D ms (100), all at once, while one more fiber ticks every
// millisecond on the same workers. Reports the wall time against the ideal
// D × ceil(N / pool size) (the pool runs at most --weft_blocking_pool_max_threads
// calls at once), the pool's peak, and how often the ticker ran meanwhile.
//
//   weft_blocking_bench [N] [D] [--weft_...]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "benchmark/bench_main.h"
#include "runtime/blocking.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"

namespace {

bool ParsePositive(const std::string& text, long* out) {
  char* end = nullptr;
  *out = std::strtol(text.c_str(), &end, 10);
  return *end == '\0' && *out > 0;
}

int Run(const weft::bench::Mode& mode) {
  long calls = 1000;
  long sleep_ms = 100;
  if (mode.arguments.size() > 2 ||
      (!mode.arguments.empty() && !ParsePositive(mode.arguments[0], &calls)) ||
      (mode.arguments.size() == 2 && !ParsePositive(mode.arguments[1], &sleep_ms))) {
    std::fprintf(stderr, "usage: weft_blocking_bench [N > 0] [D ms > 0] [--weft_...]\n");
    return 2;
  }
  const weft::RuntimeOptions options = weft::RuntimeOptions::FromFlags();
  weft::Runtime runtime(options);
  weft::FiberLatch done(calls);
  std::atomic<bool> stop{false};
  std::atomic<long> ticks{0};
  weft::FiberLatch ticker_done(1);
  weft::StartFiberDetached([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      ticks.fetch_add(1, std::memory_order_relaxed);
      weft::this_fiber::SleepFor(std::chrono::milliseconds(1));
    }
    ticker_done.CountDown();
  });
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < calls; ++i) {
    weft::StartFiberDetached([&] {
      weft::RunBlocking(
          [&] { std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms)); });
      done.CountDown();
    });
  }
  done.Wait();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  ticker_done.Wait();
  // The pool counts a task once its thread is back from it.
  while (weft::GetRuntimeStats().blocking_pool.tasks_run <
         static_cast<std::uint64_t>(calls)) {
    std::this_thread::yield();
  }
  const weft::RuntimeStats stats = weft::GetRuntimeStats();
  std::size_t workers = 0;
  for (const auto& group : stats.scheduling_groups) workers += group.workers.size();
  const long pool = static_cast<long>(options.blocking_pool_max_threads);
  const long rounds = (calls + pool - 1) / pool;
  const double ideal = static_cast<double>(sleep_ms) * static_cast<double>(rounds) / 1e3;
  std::printf("%ld RunBlocking calls of %ld ms on %zu workers, pool of %ld threads\n",
              calls, sleep_ms, workers, pool);
  std::printf("wall time %.3f s; ideal %ld ms x ceil(%ld / %ld) = %.3f s; ratio %.3f\n",
              seconds, sleep_ms, calls, pool, ideal, seconds / ideal);
  std::printf("pool peak %zu threads, %llu tasks run; ticker ran %ld times meanwhile\n",
              stats.blocking_pool.peak_threads,
              static_cast<unsigned long long>(stats.blocking_pool.tasks_run),
              ticks.load());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_blocking_bench: N fibers each call RunBlocking on a D ms sleep at once "
      "while\n"
      "another fiber ticks every millisecond; reports the wall time against\n"
      "D x ceil(N / pool size) and how often the ticker ran.\n";
  program.own_flags =
      "  [N] [D]\n"
      "          how many calls (1000) and how long each sleeps, in ms (100)\n";
  program.runtime_flags = "";
  program.google_benchmark = false;
  return weft::bench::Main(program, argc, argv, Run);
}
