// The scheduler core on its own: a scheduling group built by hand, without
// the global runtime (no StartRuntime), runs fibers placed in it, parks and
// wakes them through the wait-queue core, and stops cleanly.
#include "runtime/scheduling_group/scheduling_group.h"

#include <atomic>
#include <cstddef>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/spinlock.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/fiber_launch.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "test/test_util.h"

namespace weft::detail {
namespace {

using testing::PollUntil;
using testing::WaitOrAbort;

// A group of `workers` unpinned workers, started; stopped (after its fibers
// are done) on destruction.
class HandBuiltGroup {
 public:
  explicit HandBuiltGroup(std::size_t workers)
      : group_(/*index=*/0, /*numa_node=*/0, /*memory_node=*/-1,
               /*run_queue_size=*/64, std::vector<std::vector<int>>(workers)) {
    ConfigureStackPool(128 * 1024, /*guard_page=*/true);
    group_.Start();
  }
  ~HandBuiltGroup() {
    WaitOrAbort(
        PollUntil([this] { return group_.FinishedCount() == group_.CreatedCount(); },
                  "the group's fibers to finish"));
    group_.StopTimers();
    group_.Stop();
  }

  // Starts a fiber running `f` in the group, as a plain thread would.
  template <class F>
  void Start(F&& f) {
    int error = 0;
    FiberEntity* fiber = CreateFiberEntity(&group_, 0, sizeof(std::decay_t<F>),
                                           alignof(std::decay_t<F>), &error);
    ASSERT_NE(fiber, nullptr) << "no stack: errno " << error;
    PlaceCallable(fiber, std::forward<F>(f));
    LaunchFiber(fiber, FiberAttributes{}, /*joinable=*/false);
  }

  SchedulingGroup& group() { return group_; }

 private:
  SchedulingGroup group_;
};

TEST(HandBuiltSchedulingGroup, RunsEveryFiberPlacedInItExactlyOnce) {
  HandBuiltGroup hand_built(2);
  constexpr int kFibers = 1000;
  std::vector<std::atomic<int>> runs(kFibers);
  for (int i = 0; i != kFibers; ++i) hand_built.Start([&runs, i] { ++runs[i]; });
  WaitOrAbort(PollUntil(
      [&] {
        return hand_built.group().FinishedCount() == static_cast<std::uint64_t>(kFibers);
      },
      "every fiber"));
  for (int i = 0; i != kFibers; ++i) EXPECT_EQ(runs[i].load(), 1) << i;
  // A group of two overflows its 64-slot queue here and loses nothing.
  SchedulingGroupStats stats;
  hand_built.group().CollectStats(&stats);
  EXPECT_EQ(stats.fibers_finished, static_cast<std::uint64_t>(kFibers));
}

// Fibers park on a WaitQueue and a fiber of the same group wakes them: the
// parking core needs nothing of the global runtime either.
TEST(HandBuiltSchedulingGroup, ParksAndWakesFibersThroughTheWaitQueue) {
  HandBuiltGroup hand_built(2);
  Spinlock lock;
  WaitQueue queue;
  constexpr int kSleepers = 50;
  std::atomic<int> parked{0};
  std::atomic<int> woken{0};
  for (int i = 0; i != kSleepers; ++i) {
    hand_built.Start([&] {
      Waiter waiter;
      lock.lock();
      ++parked;
      queue.Park(&waiter, lock);
      ++woken;
    });
  }
  WaitOrAbort(
      PollUntil([&] { return parked.load() == kSleepers; }, "every fiber to park"));
  hand_built.Start([&] {
    lock.lock();
    Waiter* all = queue.PopAll();
    lock.unlock();
    WaitQueue::WakeAll(all);
  });
  WaitOrAbort(
      PollUntil([&] { return woken.load() == kSleepers; }, "every fiber to wake"));
}

}  // namespace
}  // namespace weft::detail
