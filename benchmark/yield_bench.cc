// W1: a ring of fibers on one worker, each yielding to the next. Every yield is a
// trip through the scheduler's run queue and one context switch, so the time per
// yield shows what scheduling adds to the bare switch of W0.
//
// In each batch a driver fiber starts the ring and joins it: the ring's fibers
// are all queued before the first of them runs, so no yield finds itself alone.
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>
#include <cstdint>
#include <vector>

#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"

namespace weft::showcase {

namespace {

std::vector<Target> YieldTargets() {
  return {{Target::Kind::kWithinFloorMultiple, 2.0},
          {Target::Kind::kFasterThanPeer, 3.0, Contender::kBoostFiber}};
}
const Workload kYieldRing2{"W1-2fibers", "yield", YieldTargets()};
const Workload kYieldRing10{"W1-10fibers", "yield", YieldTargets()};

// Every batch yields this often in total, whatever the ring's size.
std::int64_t YieldsPerBatch(const Scale& scale) {
  if (scale.smoke) return 10'000;
  return scale.quick ? 100'000 : 200'000;
}
std::int64_t Batches(const Scale& scale) {
  if (scale.smoke) return 1;
  return scale.quick ? 5 : 50;
}

void YieldRingOnWeft(::benchmark::State& state, int fibers, std::int64_t yields) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = 1;
  Runtime runtime(options);
  RunBatches(state, static_cast<double>(fibers * yields), [fibers, yields] {
    Fiber driver([fibers, yields] {
      std::vector<Fiber> ring;
      ring.reserve(fibers);
      for (int i = 0; i < fibers; ++i) {
        ring.emplace_back([yields] {
          for (std::int64_t n = 0; n < yields; ++n) this_fiber::Yield();
        });
      }
      for (Fiber& fiber : ring) fiber.Join();
    });
    driver.Join();
  });
}

// The thread running the measurement is the one worker: Boost.Fiber schedules
// its fibers with round_robin unless told otherwise.
void YieldRingOnBoostFiber(::benchmark::State& state, int fibers, std::int64_t yields) {
  RunBatches(state, static_cast<double>(fibers * yields), [fibers, yields] {
    boost::fibers::fiber driver([fibers, yields] {
      std::vector<boost::fibers::fiber> ring;
      ring.reserve(fibers);
      for (int i = 0; i < fibers; ++i) {
        ring.emplace_back([yields] {
          for (std::int64_t n = 0; n < yields; ++n) boost::this_fiber::yield();
        });
      }
      for (boost::fibers::fiber& fiber : ring) fiber.join();
    });
    driver.join();
  });
}

void AddRing(const Scale& scale, const Workload& workload, int fibers) {
  const std::int64_t yields = YieldsPerBatch(scale) / fibers;
  AddMeasurement(workload, Contender::kWeft, Batches(scale),
                 [fibers, yields](::benchmark::State& state) {
                   YieldRingOnWeft(state, fibers, yields);
                 });
  AddMeasurement(workload, Contender::kBoostFiber, Batches(scale),
                 [fibers, yields](::benchmark::State& state) {
                   YieldRingOnBoostFiber(state, fibers, yields);
                 });
}

}  // namespace

void AddYieldMeasurements(const Scale& scale) {
  AddRing(scale, kYieldRing2, 2);
  AddRing(scale, kYieldRing10, 10);
}

}  // namespace weft::showcase
