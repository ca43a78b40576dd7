#include "benchmark/showcase.h"

#include <thread>
#include <utility>

namespace weft::showcase {

namespace {

std::vector<Measurement>& MutableMeasurements() {
  static auto* measurements = new std::vector<Measurement>;
  return *measurements;
}

}  // namespace

const char* ContenderName(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return "weft";
    case Contender::kBoostFiber:
      return "boost.fiber";
    case Contender::kBoostFiberWorkStealing:
      return "boost.fiber-ws";
    case Contender::kFcontext:
      return "fcontext";
  }
  return "?";
}

std::string Measurement::Name() const {
  return workload->id + "/" + ContenderName(contender);
}

void AddMeasurement(const Workload& workload, Contender contender,
                    std::int64_t iterations, MeasureFn fn, double min_time) {
  MutableMeasurements().push_back(
      Measurement{&workload, contender, iterations, min_time, std::move(fn)});
}

const std::vector<Measurement>& Measurements() { return MutableMeasurements(); }

void ReportOperations(::benchmark::State& state, double operations) {
  state.counters[kPerOperationCounter] = ::benchmark::Counter(
      operations, ::benchmark::Counter::kIsRate | ::benchmark::Counter::kInvert);
}

unsigned CpuCount() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace weft::showcase
