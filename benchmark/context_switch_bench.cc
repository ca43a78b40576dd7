// W0: the raw cost of switching stacks, with no scheduler around it. weft switches
// fibers with the same Boost.Context primitive, so one round trip here is the floor
// that a yield (W1) is held to.
#include <sys/mman.h>

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#include "benchmark/showcase.h"

namespace weft::showcase {

namespace {

namespace fcontext = boost::context::detail;

const Workload kRawContextSwitch{"W0", "round-trip", {}, /*is_floor=*/true};

[[noreturn]] void BounceBack(fcontext::transfer_t from) {
  for (;;) from = fcontext::jump_fcontext(from.fctx, nullptr);
}

void MeasureRawContextSwitch(::benchmark::State& state) {
  constexpr std::size_t kStackSize = 64 * 1024;
  void* stack = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED) {
    state.SkipWithError("mmap of the context's stack failed");
    return;
  }
  fcontext::fcontext_t other = fcontext::make_fcontext(
      static_cast<char*>(stack) + kStackSize, kStackSize, &BounceBack);
  // The first switch enters BounceBack; keep its page faults out of the loop.
  other = fcontext::jump_fcontext(other, nullptr).fctx;
  for (auto _ : state) {
    other = fcontext::jump_fcontext(other, nullptr).fctx;
  }
  ReportOperations(state, static_cast<double>(state.iterations()));
  // BounceBack holds nothing that needs unwinding: its stack is simply dropped.
  munmap(stack, kStackSize);
}

}  // namespace

void AddContextSwitchMeasurements(const Scale& scale) {
  AddMeasurement(kRawContextSwitch, Contender::kFcontext, /*iterations=*/0,
                 MeasureRawContextSwitch, /*min_time=*/scale.smoke ? 0.01
                                          : scale.quick            ? 0.1
                                                                   : 0.5);
}

}  // namespace weft::showcase
