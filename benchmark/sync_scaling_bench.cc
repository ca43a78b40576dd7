// weft_sync_scaling_bench: how FiberSharedMutex readers scale from 1 to 64, and
// the throughput of FiberChannel, next to std::shared_mutex on threads and
// Boost.Fiber's buffered_channel, in one run.
//
//   weft_sync_scaling_bench [--benchmark_filter=...]
//
// Every figure is wall time per operation over all parties (ns per
// lock_shared/unlock_shared pair, ns per item through the channel), so a flat
// line across reader counts means throughput that does not collapse.
#include <atomic>
#include <boost/fiber/all.hpp>
#include <cstdint>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "benchmark/bench_main.h"
#include "benchmark/benchmark.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/this_fiber.h"

namespace {

constexpr int kReadsPerReader = 20'000;
constexpr int kChannelItems = 200'000;

unsigned Cpus() { return std::max(2u, std::thread::hardware_concurrency()); }

// Readers read a shared value under the shared lock; one read-side critical
// section is a handful of loads, as in a configuration or routing table.
void WeftSharedMutexReaders(benchmark::State& state) {
  const int readers = static_cast<int>(state.range(0));
  weft::RuntimeOptions options;
  options.concurrency_hint = Cpus();
  weft::Runtime runtime(options);
  weft::FiberSharedMutex mutex;
  std::atomic<std::uint64_t> table[4] = {};
  for (auto _ : state) {
    weft::FiberLatch done(readers);
    for (int r = 0; r != readers; ++r) {
      weft::StartFiberDetached([&] {
        std::uint64_t sum = 0;
        for (int i = 0; i != kReadsPerReader; ++i) {
          std::shared_lock<weft::FiberSharedMutex> lock(mutex);
          for (auto& v : table) sum += v.load(std::memory_order_relaxed);
        }
        benchmark::DoNotOptimize(sum);
        done.CountDown();
      });
    }
    done.Wait();
  }
  state.SetItemsProcessed(state.iterations() * readers * kReadsPerReader);
  state.counters["ns_per_read"] = benchmark::Counter(
      static_cast<double>(state.iterations() * readers * kReadsPerReader),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void StdSharedMutexReaders(benchmark::State& state) {
  const int readers = static_cast<int>(state.range(0));
  std::shared_mutex mutex;
  std::atomic<std::uint64_t> table[4] = {};
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int r = 0; r != readers; ++r) {
      threads.emplace_back([&] {
        std::uint64_t sum = 0;
        for (int i = 0; i != kReadsPerReader; ++i) {
          std::shared_lock<std::shared_mutex> lock(mutex);
          for (auto& v : table) sum += v.load(std::memory_order_relaxed);
        }
        benchmark::DoNotOptimize(sum);
      });
    }
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * readers * kReadsPerReader);
  state.counters["ns_per_read"] = benchmark::Counter(
      static_cast<double>(state.iterations() * readers * kReadsPerReader),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// `pairs` producers and as many consumers move kChannelItems values through a
// channel of 64 slots.
void WeftChannel(benchmark::State& state) {
  const int pairs = static_cast<int>(state.range(0));
  weft::RuntimeOptions options;
  options.concurrency_hint = Cpus();
  weft::Runtime runtime(options);
  for (auto _ : state) {
    weft::FiberChannel<std::uint64_t> channel(64);
    weft::FiberLatch producers(pairs);
    weft::FiberLatch consumers(pairs);
    std::atomic<std::uint64_t> received{0};
    for (int p = 0; p != pairs; ++p) {
      weft::StartFiberDetached([&] {
        for (int i = 0; i != kChannelItems / pairs; ++i) channel.Push(i);
        producers.CountDown();
      });
      weft::StartFiberDetached([&] {
        std::uint64_t n = 0;
        while (channel.Pop()) ++n;
        received += n;
        consumers.CountDown();
      });
    }
    producers.Wait();
    channel.Close();
    consumers.Wait();
    if (received.load() != static_cast<std::uint64_t>(kChannelItems / pairs) * pairs) {
      state.SkipWithError("the channel lost or duplicated values");
    }
  }
  state.SetItemsProcessed(state.iterations() * kChannelItems);
}

// Boost.Fiber's buffered_channel, fibers on one thread (its default scheduler).
void BoostChannel(benchmark::State& state) {
  const int pairs = static_cast<int>(state.range(0));
  for (auto _ : state) {
    boost::fibers::buffered_channel<std::uint64_t> channel(64);
    std::vector<boost::fibers::fiber> fibers;
    std::uint64_t received = 0;
    std::atomic<int> producing{pairs};
    for (int p = 0; p != pairs; ++p) {
      fibers.emplace_back([&] {
        for (int i = 0; i != kChannelItems / pairs; ++i) channel.push(i);
        if (--producing == 0) channel.close();
      });
      fibers.emplace_back([&] {
        std::uint64_t value;
        while (channel.pop(value) == boost::fibers::channel_op_status::success)
          ++received;
      });
    }
    for (auto& f : fibers) f.join();
    if (received != static_cast<std::uint64_t>(kChannelItems / pairs) * pairs) {
      state.SkipWithError("the channel lost or duplicated values");
    }
  }
  state.SetItemsProcessed(state.iterations() * kChannelItems);
}

BENCHMARK(WeftSharedMutexReaders)
    ->RangeMultiplier(2)
    ->Range(1, 64)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(StdSharedMutexReaders)
    ->RangeMultiplier(2)
    ->Range(1, 64)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(WeftChannel)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BoostChannel)->Arg(1)->Arg(4)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_sync_scaling_bench: FiberSharedMutex reader scaling (1..64) and\n"
      "FiberChannel throughput next to std::shared_mutex and Boost.Fiber's channel.\n";
  return weft::bench::Main(program, argc, argv, [](const weft::bench::Mode&) {
    ::benchmark::RunSpecifiedBenchmarks();
    return 0;
  });
}
