// Embeds weft as a framework would: configure the runtime in code (no
// command-line flags), run work in fibers, shut down. Exits non-zero if any
// result is wrong, so tools/check_consumer.sh can use it as a test.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"

namespace {

int failures = 0;

void Expect(bool ok, const char* what, std::uint64_t got, std::uint64_t want) {
  if (ok) return;
  std::fprintf(stderr, "consumer: %s: got %llu, want %llu\n", what,
               static_cast<unsigned long long>(got),
               static_cast<unsigned long long>(want));
  ++failures;
}

// Sums [lo, hi) over a binary tree of joinable fibers: each level hands half of
// its range to a child fiber, sums the other half itself, then joins.
std::uint64_t TreeSum(std::uint64_t lo, std::uint64_t hi) {
  if (hi - lo <= 10000) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = lo; i < hi; ++i) sum += i;
    return sum;
  }
  const std::uint64_t mid = lo + (hi - lo) / 2;
  std::uint64_t left = 0;
  weft::Fiber child([&left, lo, mid] { left = TreeSum(lo, mid); });
  const std::uint64_t right = TreeSum(mid, hi);
  child.Join();
  return left + right;
}

}  // namespace

int main() {
  constexpr int kDetached = 1000;
  std::atomic<int> detached_done{0};
  {
    weft::RuntimeOptions options;  // every field has its documented default
    options.concurrency_hint = 2;
    weft::Runtime runtime(options);
    Expect(weft::GetSchedulingGroupCount() >= 1, "scheduling groups",
           weft::GetSchedulingGroupCount(), 1);

    // Joinable fibers started from the main thread and from fibers.
    std::uint64_t sum = 0;
    weft::Fiber root([&sum] { sum = TreeSum(0, 1000000); });
    root.Join();
    Expect(sum == 499999500000ULL, "tree sum", sum, 499999500000ULL);

    // Fibers that take turns with Yield(); each knows its own id.
    std::atomic<std::uint64_t> steps{0};
    std::atomic<std::uint64_t> zero_ids{0};
    std::vector<weft::Fiber> fibers;
    for (int i = 0; i < 8; ++i) {
      fibers.emplace_back([&steps, &zero_ids] {
        if (weft::this_fiber::GetId() == 0) zero_ids.fetch_add(1);
        for (int j = 0; j < 100; ++j) {
          weft::this_fiber::Yield();
          steps.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (weft::Fiber& f : fibers) f.Join();
    Expect(steps.load() == 800, "yield steps", steps.load(), 800);
    Expect(zero_ids.load() == 0, "fibers with id 0", zero_ids.load(), 0);

    // Detached fibers: nobody joins them; ~Runtime waits for them to finish.
    for (int i = 0; i < kDetached; ++i) {
      const bool started = weft::StartFiberDetached(
          [&detached_done] { detached_done.fetch_add(1, std::memory_order_relaxed); });
      Expect(started, "StartFiberDetached", started, 1);
    }
  }
  Expect(detached_done.load() == kDetached, "detached fibers run", detached_done.load(),
         kDetached);

  if (failures != 0) {
    std::fprintf(stderr, "consumer: FAILED (%d checks)\n", failures);
    return 1;
  }
  std::printf("consumer: OK (tree sum, yields, %d detached fibers)\n", kDetached);
  return 0;
}
