#include "runtime/sync/fiber_channel.h"

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberChannelTest : public testing::WaiterNotifierTest {};

// Producers on one side, consumers on the other, through a small channel:
// every value arrives exactly once, in order per producer.
TEST_P(FiberChannelTest, DeliversEveryValueOnceInOrderPerProducer) {
  FiberChannel<long> channel(8);
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  const long per_producer = static_cast<long>(Scaled(20000, 2000));
  std::vector<std::atomic<int>> seen(kProducers * per_producer);
  std::atomic<bool> out_of_order{false};
  {
    std::vector<Actor> consumers;
    for (int c = 0; c != kConsumers; ++c) {
      consumers.emplace_back(waiter(), [&] {
        std::vector<long> last(kProducers, -1);
        while (auto value = channel.Pop()) {
          const long producer = *value / per_producer;
          const long index = *value % per_producer;
          if (index <= last[producer]) out_of_order = true;
          last[producer] = index;
          ++seen[*value];
        }
      });
    }
    {
      std::vector<Actor> producers;
      for (int p = 0; p != kProducers; ++p) {
        producers.emplace_back(notifier(), [&, p] {
          for (long i = 0; i != per_producer; ++i) {
            const long value = p * per_producer + i;
            if (i % 3 == 0) {
              while (!channel.TryPush(value)) this_fiber::Yield();
            } else {
              ASSERT_TRUE(channel.Push(value));
            }
          }
        });
      }
    }
    channel.Close();
  }
  EXPECT_FALSE(out_of_order.load());
  for (std::size_t i = 0; i != seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i;
}

TEST_P(FiberChannelTest, CloseWakesBlockedProducersAndConsumers) {
  FiberChannel<std::string> full(1);
  ASSERT_TRUE(full.TryPush("first"));
  FiberChannel<std::string> empty(1);
  std::atomic<int> blocked{0};
  std::atomic<int> push_results{0};
  std::atomic<int> empty_pops{0};
  {
    std::vector<Actor> actors;
    for (int i = 0; i != 3; ++i) {
      actors.emplace_back(waiter(), [&] {
        ++blocked;
        push_results += full.Push("blocked") ? 1 : 0;
      });
      actors.emplace_back(waiter(), [&] {
        ++blocked;
        if (!empty.Pop().has_value()) ++empty_pops;
      });
    }
    Actor(notifier(), [&] {
      WaitOrAbort(PollUntil([&] { return blocked.load() == 6; }, "the blocked actors"));
      full.Close();
      empty.Close();
    }).Join();
  }
  EXPECT_EQ(push_results.load(), 0) << "a producer blocked on a closed channel must fail";
  EXPECT_EQ(empty_pops.load(), 3);
  // What was in the channel before Close() is still delivered.
  auto value = full.Pop();
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, "first");
  EXPECT_FALSE(full.Pop().has_value());
  EXPECT_FALSE(full.Push("late"));
}

TEST(FiberChannel, FailedTryPushLeavesTheArgumentUntouched) {
  FiberChannel<std::unique_ptr<int>> channel(1);
  auto first = std::make_unique<int>(1);
  EXPECT_TRUE(channel.TryPush(std::move(first)));
  auto second = std::make_unique<int>(2);
  EXPECT_FALSE(channel.TryPush(std::move(second)));
  ASSERT_NE(second, nullptr) << "a failed TryPush(T&&) moved from its argument";
  EXPECT_EQ(*second, 2);
  auto popped = channel.TryPop();
  ASSERT_TRUE(popped.has_value());
  EXPECT_EQ(**popped, 1);
  EXPECT_FALSE(channel.TryPop().has_value());
  channel.Close();
  EXPECT_FALSE(channel.TryPush(std::move(second)));
  EXPECT_NE(second, nullptr);
}

TEST_P(FiberChannelTest, TimedOperationsTellATimeoutFromAClosedChannel) {
  FiberChannel<std::unique_ptr<int>> channel(1);
  EXPECT_EQ(channel.Capacity(), 1u);
  Actor(waiter(), [&] {
    auto popped = channel.PopFor(std::chrono::milliseconds(2));
    EXPECT_EQ(popped.status, ChannelStatus::kTimedOut);
    EXPECT_FALSE(popped.value.has_value());
    EXPECT_EQ(
        channel.PopUntil(std::chrono::system_clock::now() + std::chrono::milliseconds(1))
            .status,
        ChannelStatus::kTimedOut);
    ASSERT_EQ(channel.PushFor(std::make_unique<int>(1), std::chrono::seconds(0)),
              ChannelStatus::kOk)
        << "room is there: even a zero timeout pushes";
    EXPECT_EQ(channel.Size(), 1u);
    auto blocked = std::make_unique<int>(2);
    EXPECT_EQ(channel.PushFor(std::move(blocked), std::chrono::milliseconds(2)),
              ChannelStatus::kTimedOut);
    ASSERT_NE(blocked, nullptr) << "a timed-out push moved from its argument";
    EXPECT_EQ(channel.PushUntil(std::move(blocked), std::chrono::steady_clock::now()),
              ChannelStatus::kTimedOut);
    ASSERT_NE(blocked, nullptr);
  }).Join();
  std::atomic<bool> waiting{false};
  Actor pusher(notifier(), [&] {
    auto value = std::make_unique<int>(3);
    waiting = true;
    EXPECT_EQ(channel.PushFor(std::move(value), std::chrono::hours(1)),
              ChannelStatus::kClosed);
    ASSERT_NE(value, nullptr) << "a push failed by Close() moved from its argument";
    EXPECT_EQ(*value, 3);
  });
  WaitOrAbort(PollUntil([&] { return waiting.load(); }, "the pusher"));
  channel.Close();
  pusher.Join();
  Actor(waiter(), [&] {
    auto first = channel.PopFor(std::chrono::hours(1));
    ASSERT_EQ(first.status, ChannelStatus::kOk) << "a closed channel still delivers";
    EXPECT_EQ(**first.value, 1);
    EXPECT_EQ(channel.PopFor(std::chrono::hours(1)).status, ChannelStatus::kClosed);
    EXPECT_EQ(channel.PushFor(std::make_unique<int>(4), std::chrono::hours(1)),
              ChannelStatus::kClosed);
    EXPECT_EQ(channel.Size(), 0u);
  }).Join();
}

// A pop from a full channel moves the longest-waiting producer's value in
// behind the others before it returns, and that producer's push succeeds.
TEST_P(FiberChannelTest, APopTakesTheWaitingProducersValueInOrder) {
  FiberChannel<int> channel(2);
  ASSERT_TRUE(channel.Push(1));
  ASSERT_TRUE(channel.Push(2));
  std::atomic<bool> about_to_push{false};
  Actor producer(notifier(), [&] {
    about_to_push = true;
    EXPECT_TRUE(channel.Push(3));
  });
  WaitOrAbort(PollUntil([&] { return about_to_push.load(); }, "the producer"));
  // Observed, not relied on: the producer is most likely parked by now.
  for (int i = 0; i != 100; ++i) std::this_thread::yield();
  Actor(waiter(), [&] {
    EXPECT_EQ(channel.Pop(), 1);
    EXPECT_EQ(channel.Pop(), 2);
    EXPECT_EQ(channel.Pop(), 3);
  }).Join();
  producer.Join();
  EXPECT_EQ(channel.Size(), 0u);
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberChannelTest);

// Consumers parked in order 0, 1, 2 receive values pushed in order 0, 1, 2.
TEST(FiberChannel, WaitingConsumersAreServedInOrder) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  FiberChannel<int> channel(4);
  std::vector<int> got(3, -1);
  std::atomic<int> parked{0};
  std::vector<Fiber> consumers;
  for (int i = 0; i != 3; ++i) {
    consumers.emplace_back([&, i] {
      WaitOrAbort(PollUntil([&] { return parked.load() == i; }, "the earlier consumers"));
      ++parked;
      got[i] = *channel.Pop();
    });
  }
  Fiber([&] {
    WaitOrAbort(PollUntil([&] { return parked.load() == 3; }, "the consumers"));
    this_fiber::Yield();  // the last one parks
    for (int v = 0; v != 3; ++v) ASSERT_TRUE(channel.Push(v));
  }).Join();
  for (Fiber& f : consumers) f.Join();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

// A value whose n-th move (counting from when `moves_until_failure` is set to
// n) throws.
struct Fragile {
  static inline std::atomic<int> moves_until_failure{0};
  int value;
  explicit Fragile(int v) : value(v) {}
  Fragile(Fragile&& other) : value(other.value) {
    if (moves_until_failure.load() > 0 && moves_until_failure.fetch_sub(1) == 1) {
      throw std::runtime_error("move failed");
    }
  }
};

TEST(FiberChannel, AThrowingMoveReachesTheCallerWhoseValueItIsAndLosesNothing) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  FiberChannel<Fragile> channel(1);
  ASSERT_TRUE(channel.Push(Fragile(1)));
  // A producer waits on the full channel.
  std::atomic<bool> about_to_push{false};
  std::atomic<bool> producer_threw{false};
  Fiber producer([&] {
    about_to_push = true;
    try {
      channel.Push(Fragile(2));
    } catch (const std::runtime_error&) {
      producer_threw = true;
    }
  });
  WaitOrAbort(PollUntil([&] { return about_to_push.load(); }, "the producer"));
  for (int i = 0; i != 100; ++i) std::this_thread::yield();

  // Our pop's own move throws: the pop fails and nothing changes.
  Fragile::moves_until_failure = 1;
  EXPECT_THROW(channel.Pop(), std::runtime_error);
  EXPECT_EQ(channel.Size(), 1u);
  EXPECT_FALSE(producer_threw.load());

  // Our move succeeds, the waiting producer's (into the freed slot) throws: we
  // get our value, the producer gets the exception, its value is not queued.
  Fragile::moves_until_failure = 2;
  std::optional<Fragile> first = channel.Pop();
  Fragile::moves_until_failure = 0;
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->value, 1);
  producer.Join();
  EXPECT_TRUE(producer_threw.load());
  EXPECT_EQ(channel.Size(), 0u) << "a value whose move failed was queued";
  EXPECT_TRUE(channel.TryPush(Fragile(3)));
  EXPECT_EQ(channel.Pop()->value, 3);
}

TEST(FiberChannelDeathTest, DestroyingAChannelWithWaitersAborts) {
  EXPECT_DEATH(
      {
        Runtime runtime(testing::OptionsWithWorkers(1));
        auto* channel = new FiberChannel<int>(1);
        std::atomic<bool> about_to_pop{false};
        StartFiberDetached([&] {
          about_to_pop = true;
          channel->Pop();
        });
        WaitOrAbort(PollUntil([&] { return about_to_pop.load(); }, "the consumer"));
        for (int i = 0; i != 1000; ++i) std::this_thread::yield();
        delete channel;
      },
      "destroyed while fibers or threads wait on it");
}

TEST(FiberChannelDeathTest, ZeroCapacityAborts) {
  EXPECT_DEATH(FiberChannel<int>(0), "capacity of at least 1");
}

}  // namespace
}  // namespace weft
