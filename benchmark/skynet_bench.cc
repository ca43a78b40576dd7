// W3 skynet: a 10-ary tree of fibers down to 1,000,000 leaves (100,000 with
// --quick). Each leaf returns its number, each parent starts its ten children,
// joins them and sums what they returned; the root's sum must be n(n-1)/2. The
// tree creates 1,111,111 fibers, and since parents start all their children
// before joining any, most of them are alive at once: it measures creating,
// scheduling and retiring fibers in bulk, with stacks and run queues far past
// their usual occupancy (weft's run queue overflows into its overflow list).
//
// Every runtime runs the same code, what a user of each would write: a node
// starts its children as joinable fibers, each writing its sum into a slot of
// the parent's array, then joins them in order (Go has no join: its children
// send into a channel with room for all ten, see benchmark/peers/go). The root
// is itself a fiber, started from the timing thread, as Go's root is a
// goroutine. The figure is the wall time of one whole tree, from starting the
// root to having its sum, in ms; the median over the timed trees, after one
// untimed tree that maps and faults in the stacks a long-running process would
// already have.
//
// W3-cold is the same tree built once in a fresh process (AddChildMeasurement:
// the showcase runs itself with --child=W3-cold/<runtime>), what a freshly
// started server's first burst of fibers meets: no stack pooled or faulted in,
// no pool grown. The child starts the runtime, times the first tree as above,
// and reports, beside its wall time (W3-cold, ms), its own peak resident memory
// at the end (W3-cold-rss, getrusage's ru_maxrss, in MiB; it includes the
// program's own few MiB). The Go peer does the same in a fresh child of its own
// (weft_go_peer -child=W3-cold).
//
// Contenders: weft on one worker per CPU and Boost.Fiber work_stealing on as many
// threads. Boost.Fiber's round_robin on one thread is left out: it took 4.7 s
// per tree of 100,000 leaves here, even after an untimed tree, so a tree of 1M
// leaves would take most of a minute. There is no std::thread version: a
// million threads is not something anyone would write.
#include <algorithm>
#include <boost/fiber/fiber.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"

namespace weft::showcase {

namespace {

const Workload kSkynet{
    "W3",
    "tree",
    {{Target::Kind::kFasterThanPeer, 2.0, Contender::kGo},
     {Target::Kind::kFasterThanPeer, 2.0, Contender::kBoostFiberWorkStealing}},
    /*is_floor=*/false,
    /*unit=*/"ms"};

const Workload kSkynetCold{
    "W3-cold",
    "tree",
    {{Target::Kind::kFasterThanPeer, 2.0, Contender::kGo},
     {Target::Kind::kFasterThanPeer, 2.0, Contender::kBoostFiberWorkStealing}},
    /*is_floor=*/false,
    /*unit=*/"ms"};
const Workload kSkynetColdRss{"W3-cold-rss",
                              "tree",
                              {{Target::Kind::kAtMost, 64}},
                              /*is_floor=*/false,
                              /*unit=*/"MiB"};

constexpr int kFanOut = 10;

// How one contender measures the tree.
struct SkynetSizes {
  std::int64_t leaves;  // a power of ten, as the Go peer requires
  std::int64_t trees;   // timed trees; the figure is their median
  bool warm_up;         // one untimed tree first
};

// --smoke only checks the answers, but builds weft's tree at full size: the
// million-fiber tree is what overflows the run queue. At 1M leaves weft's
// untimed tree takes about 15 s on a 2-core VM, most of it faulting in 720k
// pages of fresh stacks; the timed trees after it take 1.5-2 s each.
SkynetSizes WeftSizes(const Scale& scale) {
  if (scale.smoke) return {1'000'000, 1, false};
  if (scale.quick) return {100'000, 2, true};
  return {1'000'000, 3, true};
}

// A Boost.Fiber work_stealing tree of 1M leaves takes 15-20 s on a 2-core VM:
// one tree, without the untimed one, keeps the run bearable and still measures
// it at the same size. Leaving the warm-up out does not handicap it: glibc hands
// most of its malloc'd stacks back to the kernel after a tree, so the next tree
// faults them in anew (measured in a process of its own: 18.3 s and 820k page
// faults for the first tree, 17.4 s and 890k for the second). How much of that
// comes back depends on what the process did before; within the showcase the
// tree has taken anywhere from 2.5 s to 21 s.
SkynetSizes BoostWorkStealingSizes(const Scale& scale) {
  if (scale.smoke) return {1'000, 1, false};
  if (scale.quick) return {100'000, 2, true};
  return {1'000'000, 1, false};
}

std::int64_t GoLeaves(const Scale& scale) {
  return scale.smoke ? 1'000 : WeftSizes(scale).leaves;
}

// The cold tree is as large as Go's, for every runtime: 1M leaves (100k with
// --quick). --smoke keeps it tiny, since the warm row already builds weft's 1M
// tree.
std::int64_t ColdLeaves(const Scale& scale) { return GoLeaves(scale); }

std::int64_t ExpectedSum(std::int64_t leaves) { return leaves * (leaves - 1) / 2; }

void Join(Fiber& fiber) { fiber.Join(); }
void Join(boost::fibers::fiber& fiber) { fiber.join(); }

// The sum of first ... first + leaves - 1, one fiber of type FiberType per node
// below the caller.
template <class FiberType>
std::int64_t Skynet(std::int64_t first, std::int64_t leaves) {
  if (leaves == 1) return first;
  const std::int64_t share = leaves / kFanOut;
  std::int64_t sums[kFanOut];
  FiberType children[kFanOut];
  for (int i = 0; i < kFanOut; ++i) {
    children[i] = FiberType([&sums, i, first, share] {
      sums[i] = Skynet<FiberType>(first + i * share, share);
    });
  }
  std::int64_t sum = 0;
  for (int i = 0; i < kFanOut; ++i) {
    Join(children[i]);
    sum += sums[i];
  }
  return sum;
}

// The whole tree, its root a fiber of its own.
template <class FiberType>
std::int64_t SkynetTree(std::int64_t leaves) {
  std::int64_t sum = 0;
  FiberType root([&sum, leaves] { sum = Skynet<FiberType>(0, leaves); });
  Join(root);
  return sum;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Times `tree` (returning the tree's sum) once per iteration of `state`, after
// one untimed tree if `warm_up`, checks every sum, and reports the median time.
template <class Tree>
void MeasureTrees(::benchmark::State& state, std::int64_t leaves, bool warm_up,
                  Tree&& tree) {
  const auto check = [&state, leaves](std::int64_t sum) {
    if (sum == ExpectedSum(leaves)) return true;
    state.SkipWithError(("skynet over " + std::to_string(leaves) + " leaves summed to " +
                         std::to_string(sum) + "; the answer is " +
                         std::to_string(ExpectedSum(leaves)))
                            .c_str());
    return false;
  };
  bool correct = !warm_up || check(tree());
  std::vector<double> milliseconds;
  for (auto _ : state) {
    if (!correct) break;
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t sum = tree();
    milliseconds.push_back(std::chrono::duration<double, std::milli>(
                               std::chrono::steady_clock::now() - start)
                               .count());
    correct = check(sum);
  }
  if (correct) ReportValue(state, Median(milliseconds));
}

void SkynetOnWeft(::benchmark::State& state, const SkynetSizes& sizes) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  Runtime runtime(options);
  const std::int64_t leaves = sizes.leaves;
  MeasureTrees(state, leaves, sizes.warm_up,
               [leaves] { return SkynetTree<Fiber>(leaves); });
}

void SkynetOnBoostFiberWorkStealing(::benchmark::State& state, const SkynetSizes& sizes) {
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  const std::int64_t leaves = sizes.leaves;
  MeasureTrees(state, leaves, sizes.warm_up, [&pool, leaves] {
    std::int64_t sum = 0;
    pool.Run([&sum, leaves] { sum = SkynetTree<boost::fibers::fiber>(leaves); });
    return sum;
  });
}

// The child's side of W3-cold: times `tree` (returning its sum) once, checks
// the sum, and returns the time in ms and the process's peak RSS in MiB.
template <class Tree>
std::vector<double> MeasureColdTree(std::int64_t leaves, Tree&& tree) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t sum = tree();
  const double milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
          .count();
  if (sum != ExpectedSum(leaves)) {
    ChildFails("skynet over " + std::to_string(leaves) + " leaves summed to " +
               std::to_string(sum) + "; the answer is " +
               std::to_string(ExpectedSum(leaves)));
  }
  return {milliseconds, PeakResidentMiB()};
}

std::vector<double> ColdSkynetOnWeft(std::int64_t leaves) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  Runtime runtime(options);
  return MeasureColdTree(leaves, [leaves] { return SkynetTree<Fiber>(leaves); });
}

std::vector<double> ColdSkynetOnBoostFiberWorkStealing(std::int64_t leaves) {
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  std::vector<double> figures = MeasureColdTree(leaves, [&pool, leaves] {
    std::int64_t sum = 0;
    pool.Run([&sum, leaves] { sum = SkynetTree<boost::fibers::fiber>(leaves); });
    return sum;
  });
  BoostWorkStealingPool::ShutDown();
  return figures;
}

}  // namespace

void AddSkynetMeasurements(const Scale& scale) {
  const SkynetSizes weft = WeftSizes(scale);
  AddMeasurement(kSkynet, Contender::kWeft, weft.trees,
                 [weft](::benchmark::State& state) { SkynetOnWeft(state, weft); });
  const SkynetSizes boost_ws = BoostWorkStealingSizes(scale);
  AddMeasurement(kSkynet, Contender::kBoostFiberWorkStealing, boost_ws.trees,
                 [boost_ws](::benchmark::State& state) {
                   SkynetOnBoostFiberWorkStealing(state, boost_ws);
                 });
  const std::string go_leaves = "-w3_leaves=" + std::to_string(GoLeaves(scale));
  AddGoMeasurement(kSkynet, "W3", "W3", go_leaves);

  const std::int64_t cold = ColdLeaves(scale);
  AddChildMeasurement(kSkynetCold, Contender::kWeft, scale,
                      [cold] { return ColdSkynetOnWeft(cold); }, {&kSkynetColdRss});
  AddChildMeasurement(kSkynetCold, Contender::kBoostFiberWorkStealing, scale,
                      [cold] { return ColdSkynetOnBoostFiberWorkStealing(cold); },
                      {&kSkynetColdRss});
  AddGoMeasurement(kSkynetCold, "W3-cold", "W3-cold", go_leaves);
  AddGoMeasurement(kSkynetColdRss, "W3-cold", "W3-cold-rss", go_leaves);
}

}  // namespace weft::showcase
