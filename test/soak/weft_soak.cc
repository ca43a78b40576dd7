// weft_soak: a mixed workload run for a while, watching for leaks and broken
// invariants. Each round starts fibers from a plain thread and from fibers, passes
// items through a channel, contends a mutex and a shared mutex, signals with a
// condition variable, sleeps, sets and kills timers, and chains futures, checking
// every count at the end of the round. Resident memory is sampled after every
// round; once the pools have warmed up (the first quarter of the run), it must
// not keep growing.
//
//   weft_soak [--seconds=30] [--weft_...]
//
// Exit status 0 if every round's invariants held and memory stayed flat, 1
// otherwise, with a message saying which.
#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/when_all.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/this_fiber.h"
#include "runtime/timer/timer.h"

DEFINE_uint64(seconds, 30, "How long to run (1..86400)");
DEFINE_bool(check_memory, true,
            "Fail if resident memory grows after warm-up (off under sanitizers, whose "
            "shadow memory and quarantine grow by design)");

namespace {

using Clock = std::chrono::steady_clock;

long ResidentKiB() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// One round; returns an empty string if every invariant held, else what broke.
std::string RunRound() {
  constexpr int kProducers = 8;
  constexpr int kItemsEach = 500;
  constexpr int kWorkers = 64;
  constexpr int kTimers = 64;

  weft::FiberChannel<int> items(32);
  std::atomic<std::int64_t> consumed_sum{0};
  std::atomic<int> consumed{0};
  weft::FiberMutex mutex;
  std::int64_t guarded = 0;
  weft::FiberSharedMutex shared;
  std::int64_t shared_value = 0;
  weft::FiberConditionVariable cv;
  int turn = 0;
  std::atomic<int> timers_fired{0};

  // Producers and consumers through the channel.
  std::vector<weft::Fiber> fibers;
  for (int p = 0; p < kProducers; ++p) {
    fibers.emplace_back([&items] {
      for (int i = 1; i <= kItemsEach; ++i) items.Push(i);
    });
  }
  std::vector<weft::Fiber> consumers;
  for (int c = 0; c < 4; ++c) {
    consumers.emplace_back([&] {
      while (auto item = items.Pop()) {
        consumed_sum.fetch_add(*item);
        consumed.fetch_add(1);
      }
    });
  }
  // Mutex, shared mutex, condition variable, sleeps and nested spawns.
  weft::FiberLatch workers_done(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    const bool started = weft::StartFiberDetached([&, w] {
      for (int i = 0; i < 20; ++i) {
        {
          std::lock_guard<weft::FiberMutex> lock(mutex);
          ++guarded;
        }
        if (i % 4 == 0) {
          std::unique_lock<weft::FiberSharedMutex> lock(shared);
          ++shared_value;
        } else {
          std::shared_lock<weft::FiberSharedMutex> lock(shared);
          (void)shared_value;
        }
      }
      if (w < 2) {  // two fibers take turns through the condition variable
        for (int i = 0; i < 50; ++i) {
          std::unique_lock<weft::FiberMutex> lock(mutex);
          cv.wait(lock, [&] { return turn == w; });
          turn = 1 - w;
          cv.notify_all();
        }
      }
      if (w % 8 == 0) weft::this_fiber::SleepFor(std::chrono::microseconds(100 + w));
      weft::Fiber child([] { weft::this_fiber::Yield(); });
      child.Join();
      workers_done.CountDown();
    });
    if (!started) return "StartFiberDetached failed";
  }
  // Timers: half killed before they fire, half allowed to fire.
  std::vector<weft::TimerId> killed;
  std::atomic<int> killed_ran_late{0};
  for (int t = 0; t < kTimers; ++t) {
    if (t % 2 == 0) {
      weft::DetachTimer(weft::SetTimer(Clock::now() + std::chrono::microseconds(50 * t),
                                       [&timers_fired] { timers_fired.fetch_add(1); }));
    } else {
      killed.push_back(
          weft::SetTimer(Clock::now() + std::chrono::seconds(10),
                         [&killed_ran_late] { killed_ran_late.fetch_add(1); }));
    }
  }
  for (weft::TimerId id : killed) weft::KillTimer(id);
  // Futures: Async fan-out, a Then chain, WhenAll.
  std::vector<weft::Future<std::uint64_t>> parts;
  for (std::uint64_t i = 0; i < 16; ++i) {
    parts.push_back(
        weft::Async([i] { return i; }).Then([](std::uint64_t v) { return v * 2; }));
  }
  const std::vector<std::uint64_t> doubled =
      weft::BlockingGet(weft::WhenAll(std::move(parts)));

  for (weft::Fiber& fiber : fibers) fiber.Join();
  items.Close();
  for (weft::Fiber& consumer : consumers) consumer.Join();
  workers_done.Wait();
  // Detached timers fire within a few ms; wait for them (bounded) before checking.
  const auto timers_deadline = Clock::now() + std::chrono::seconds(30);
  while (timers_fired.load() != kTimers / 2 && Clock::now() < timers_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  const std::int64_t expected_sum =
      static_cast<std::int64_t>(kProducers) * kItemsEach * (kItemsEach + 1) / 2;
  if (consumed.load() != kProducers * kItemsEach || consumed_sum.load() != expected_sum) {
    return "channel: " + std::to_string(consumed.load()) + " items consumed, sum " +
           std::to_string(consumed_sum.load()) + " (want " +
           std::to_string(kProducers * kItemsEach) + ", " + std::to_string(expected_sum) +
           ")";
  }
  if (guarded != kWorkers * 20) return "mutex: count " + std::to_string(guarded);
  if (shared_value != kWorkers * 5)
    return "shared mutex: count " + std::to_string(shared_value);
  if (timers_fired.load() != kTimers / 2) {
    return "timers: " + std::to_string(timers_fired.load()) + " of " +
           std::to_string(kTimers / 2) + " fired";
  }
  if (killed_ran_late.load() != 0) return "a killed timer ran";
  for (std::uint64_t i = 0; i < doubled.size(); ++i) {
    if (doubled[i] != 2 * i) return "futures: element " + std::to_string(i) + " wrong";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("weft_soak [--seconds=N] [--weft_...]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_seconds < 1 || FLAGS_seconds > 86400) {
    std::fprintf(stderr, "weft_soak: --seconds=%llu is out of range; use 1..86400\n",
                 static_cast<unsigned long long>(FLAGS_seconds));
    return 2;
  }
  weft::Runtime runtime(weft::RuntimeOptions::FromFlags());
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(FLAGS_seconds);
  const auto warm = start + std::chrono::milliseconds(FLAGS_seconds * 250);
  long baseline_kib = 0;
  long peak_after_warmup_kib = 0;
  std::uint64_t rounds = 0;
  while (Clock::now() < end) {
    const std::string broken = RunRound();
    if (!broken.empty()) {
      std::fprintf(stderr, "weft_soak: round %llu broke an invariant: %s\n",
                   static_cast<unsigned long long>(rounds), broken.c_str());
      return 1;
    }
    ++rounds;
    const long rss = ResidentKiB();
    if (Clock::now() < warm) {
      baseline_kib = std::max(baseline_kib, rss);
    } else {
      peak_after_warmup_kib = std::max(peak_after_warmup_kib, rss);
    }
  }
  // The last round's detached fibers count down before they exit: give them a
  // moment (bounded) to be gone.
  std::uint64_t alive = 0;
  for (const auto settle = Clock::now() + std::chrono::seconds(10);;) {
    alive = 0;
    for (const auto& group : weft::GetRuntimeStats().scheduling_groups) {
      alive += group.fibers_alive;
    }
    if (alive == 0 || Clock::now() > settle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf(
      "weft_soak: %llu rounds in %llu s; resident memory %ld KiB after warm-up, peak %ld "
      "KiB "
      "after; %llu fibers alive at the end\n",
      static_cast<unsigned long long>(rounds),
      static_cast<unsigned long long>(FLAGS_seconds), baseline_kib, peak_after_warmup_kib,
      static_cast<unsigned long long>(alive));
  // Pools (stacks, allocator arenas) settle during warm-up; after it, growth by
  // more than a quarter plus 8 MiB is a leak.
  if (FLAGS_check_memory &&
      peak_after_warmup_kib > baseline_kib + baseline_kib / 4 + 8 * 1024) {
    std::fprintf(stderr,
                 "weft_soak: resident memory grew from %ld to %ld KiB after warm-up\n",
                 baseline_kib, peak_after_warmup_kib);
    return 1;
  }
  if (alive != 0) {
    std::fprintf(stderr, "weft_soak: %llu fibers still alive after the last round\n",
                 static_cast<unsigned long long>(alive));
    return 1;
  }
  return 0;
}
