#include "runtime/sync/fiber_channel.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
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

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberChannelTest);

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

TEST(FiberChannelDeathTest, ZeroCapacityAborts) {
  EXPECT_DEATH(FiberChannel<int>(0), "capacity of at least 1");
}

}  // namespace
}  // namespace weft
