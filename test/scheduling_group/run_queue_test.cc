#include "runtime/scheduling_group/run_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "test/test_util.h"

namespace weft::detail {
namespace {

TEST(RunQueue, PopsInPushOrderAndReportsFullAndEmpty) {
  std::vector<int> items(8);
  RunQueue<int> queue(8);
  EXPECT_EQ(queue.Pop(), nullptr);
  EXPECT_TRUE(queue.LooksEmpty());
  for (int& item : items) EXPECT_TRUE(queue.Push(&item));
  int extra = 0;
  EXPECT_FALSE(queue.Push(&extra)) << "a full queue must refuse a push";
  EXPECT_EQ(queue.ApproxSize(), 8u);
  for (int& item : items) EXPECT_EQ(queue.Pop(), &item);
  EXPECT_EQ(queue.Pop(), nullptr);
}

TEST(RunQueue, KeepsOrderOverManyLapsOfTheRing) {
  RunQueue<int> queue(4);
  std::vector<int> items(1000);
  std::size_t next_out = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    ASSERT_TRUE(queue.Push(&items[i]));
    if (i % 3 == 2) {  // drain in threes so the ring wraps at varying offsets
      for (int k = 0; k < 3; ++k) ASSERT_EQ(queue.Pop(), &items[next_out++]);
    }
  }
  while (int* item = queue.Pop()) ASSERT_EQ(item, &items[next_out++]);
  EXPECT_EQ(next_out, items.size());
}

struct TortureCase {
  int producers;
  int consumers;
  std::size_t capacity;
};

class RunQueueTorture : public ::testing::TestWithParam<TortureCase> {};

// Every item pushed by many producers is popped exactly once by many consumers,
// including when the queue is tiny and producers keep finding it full.
TEST_P(RunQueueTorture, DeliversEveryItemExactlyOnce) {
  const TortureCase param = GetParam();
  const std::size_t per_producer = weft::testing::Scaled(500'000);
  const std::size_t total = per_producer * param.producers;
  std::vector<char> items(total);
  std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[total]);
  for (std::size_t i = 0; i < total; ++i) seen[i].store(0);
  RunQueue<char> queue(param.capacity);
  std::atomic<std::size_t> popped{0};
  std::atomic<std::size_t> full_pushes{0};

  std::vector<std::thread> threads;
  for (int p = 0; p < param.producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::size_t i = 0; i < per_producer; ++i) {
        char* item = &items[p * per_producer + i];
        while (!queue.Push(item)) {
          full_pushes.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }
  for (int c = 0; c < param.consumers; ++c) {
    threads.emplace_back([&] {
      while (popped.load(std::memory_order_relaxed) < total) {
        char* item = queue.Pop();
        if (item == nullptr) {
          std::this_thread::yield();
          continue;
        }
        seen[item - items.data()].fetch_add(1, std::memory_order_relaxed);
        popped.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(queue.Pop(), nullptr);
  std::size_t lost = 0, duplicated = 0;
  for (std::size_t i = 0; i < total; ++i) {
    lost += seen[i].load() == 0;
    duplicated += seen[i].load() > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  if (param.capacity <= 16) {
    EXPECT_GT(full_pushes.load(), 0u) << "the queue never filled up";
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, RunQueueTorture,
                         ::testing::Values(TortureCase{1, 1, 2}, TortureCase{4, 4, 4},
                                           TortureCase{4, 1, 16}, TortureCase{1, 4, 1024},
                                           TortureCase{8, 8, 65536}),
                         [](const ::testing::TestParamInfo<TortureCase>& info) {
                           return std::to_string(info.param.producers) + "Producers" +
                                  std::to_string(info.param.consumers) + "Consumers" +
                                  "Capacity" + std::to_string(info.param.capacity);
                         });

}  // namespace
}  // namespace weft::detail
