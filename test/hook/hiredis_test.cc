// hiredis, unmodified, in fibers: its blocking API (connect, write, read on a
// blocking socket) parks fibers instead of workers once the hooks are in.
#include <hiredis/hiredis.h>

#include <atomic>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hook/hook.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/hook/hook_test_util.h"
#include "test/hook/server_process.h"
#include "test/test_util.h"

namespace weft {
namespace {

// 1000 fibers on 2 workers each BLPOP an empty list with a 1 s timeout: every
// one returns nil. Without the hooks the workers would serve the BLPOPs one
// worker-blocking second at a time (the showcase's W13-blpop-hooked and
// W13-blpop-unhooked rows, benchmark/redis_bench.cc, show both).
TEST(HookHiredis, ThousandBlockingPopsOnTwoWorkersAllTimeOut) {
  testing::RedisServer server;
  ASSERT_TRUE(server.ready()) << "redis-server did not start (tools/setup.sh installs it)";
  Runtime runtime(testing::TwoWorkers());
  ASSERT_TRUE(hook::Enabled());
  const int fibers_count = static_cast<int>(testing::Scaled(1000, 100));
  std::atomic<int> nil{0}, finished{0}, failed{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < fibers_count; ++i) {
    fibers.emplace_back([&, i] {
      redisContext* c = redisConnect("127.0.0.1", server.port());
      if (c == nullptr || c->err != 0) {
        failed.fetch_add(1);
      } else {
        const std::string key = "weft-empty-" + std::to_string(i);
        auto* reply = static_cast<redisReply*>(redisCommand(c, "BLPOP %s 1", key.c_str()));
        if (reply != nullptr && reply->type == REDIS_REPLY_NIL) {
          nil.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
        if (reply != nullptr) freeReplyObject(reply);
      }
      if (c != nullptr) redisFree(c);
      finished.fetch_add(1);
    });
  }
  // While the pops wait, a worker is free.
  EXPECT_TRUE(testing::AWorkerIsFree());
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(finished.load(), fibers_count);
  EXPECT_EQ(nil.load(), fibers_count);
  EXPECT_EQ(failed.load(), 0);
}

// Values written by one fiber are read by another through separate
// connections: replies are whole and in order under concurrency.
TEST(HookHiredis, SetAndGetFromManyFibers) {
  testing::RedisServer server;
  ASSERT_TRUE(server.ready());
  Runtime runtime(testing::TwoWorkers());
  constexpr int kFibers = 100;
  std::atomic<int> good{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&, i] {
      redisContext* c = redisConnect("127.0.0.1", server.port());
      if (c == nullptr || c->err != 0) {
        if (c != nullptr) redisFree(c);
        return;
      }
      int ok = 0;
      for (int j = 0; j < 20; ++j) {
        const std::string key = "k" + std::to_string(i) + "-" + std::to_string(j);
        auto* set = static_cast<redisReply*>(redisCommand(c, "SET %s v%d", key.c_str(), j));
        auto* get = static_cast<redisReply*>(redisCommand(c, "GET %s", key.c_str()));
        if (set != nullptr && get != nullptr && get->type == REDIS_REPLY_STRING &&
            std::string(get->str, get->len) == "v" + std::to_string(j)) {
          ++ok;
        }
        if (set != nullptr) freeReplyObject(set);
        if (get != nullptr) freeReplyObject(get);
      }
      if (ok == 20) good.fetch_add(1);
      redisFree(c);
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(good.load(), kFibers);
}

}  // namespace
}  // namespace weft
