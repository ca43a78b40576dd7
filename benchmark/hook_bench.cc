// weft_hook_bench: unmodified hiredis (its blocking API) in weft fibers on 2
// workers, against a redis-server on 127.0.0.1 that the caller started (the
// showcase's W13 rows start one per measurement, net/servers.h). Built twice
// from this file: weft_hook_bench links weft::hook, so hiredis's connect,
// write and read park the fibers; weft_hook_bench_unhooked is the same program
// without the hooks, where each of those calls holds its worker.
//
//   weft_hook_bench --mode=getset --port=P [--connections=1000] [--pairs=100]
//   weft_hook_bench --mode=blpop --port=P [--fibers=1000] [--timeout_seconds=1]
//
// getset (W13): every fiber opens its own connection (hiredis's redisConnect),
// then, once all are open, runs --pairs SET/GET pairs on its key with a 3-byte
// value (what `redis-benchmark -t set,get` sends), each reply checked. Prints
// the requests per second from the moment every connection is open until the
// last reply (a pair is two requests).
//
// blpop: every fiber opens a connection and sends `BLPOP <its own empty list>
// <timeout>`, which the server answers with nil once the timeout passes. Prints
// the wall time from the first fiber's start to the last nil. With the hooks
// the pops wait together; without them each holds a worker for its timeout.
//
// Output: one `name value` line per figure on stdout; on failure one line
// `error: <what went wrong>` and exit status 1 (2: bad arguments). Bounded:
// --connections and --fibers at most 4000, every fiber does a fixed amount of
// work, and hiredis's connect and command timeouts are --io_timeout_seconds.
#include <gflags/gflags.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"

DEFINE_string(mode, "", "getset (W13's throughput) or blpop (the hooked/unhooked contrast)");
DEFINE_int32(port, 0, "The redis-server's port on 127.0.0.1");
DEFINE_int32(connections, 1000, "getset: fibers, each with its own connection");
DEFINE_int32(pairs, 100, "getset: SET/GET pairs per connection");
DEFINE_int32(fibers, 1000, "blpop: fibers, each with its own connection and list");
DEFINE_double(timeout_seconds, 1, "blpop: BLPOP's timeout, in seconds (Redis takes decimals)");
DEFINE_double(io_timeout_seconds, 60,
              "hiredis's connect and command timeout: a server that stops answering ends "
              "the run with an error");
DEFINE_int32(workers, 2, "weft's workers, one scheduling group");

namespace weft {
namespace {

constexpr int kMaxClients = 4000;

// The first failure of any fiber, reported once every fiber is done.
class FirstError {
 public:
  void Set(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (what_.empty()) what_ = what;
  }
  std::string Get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return what_;
  }

 private:
  std::mutex mutex_;
  std::string what_;
};

timeval ToTimeval(double seconds) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(seconds);
  tv.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

// A hiredis connection to 127.0.0.1:--port with both timeouts set; nullptr
// (and *error) on failure.
redisContext* Connect(std::string* error) {
  redisContext* c =
      redisConnectWithTimeout("127.0.0.1", FLAGS_port, ToTimeval(FLAGS_io_timeout_seconds));
  if (c == nullptr) {
    *error = "redisConnect returned null";
    return nullptr;
  }
  if (c->err != 0) {
    *error = std::string("connect: ") + c->errstr;
    redisFree(c);
    return nullptr;
  }
  if (redisSetTimeout(c, ToTimeval(FLAGS_io_timeout_seconds)) != REDIS_OK) {
    *error = "redisSetTimeout failed";
    redisFree(c);
    return nullptr;
  }
  return c;
}

// Runs `command` and checks its reply; "" or what was wrong.
template <class Check>
std::string Command(redisContext* c, Check&& check, const char* format, const char* key) {
  auto* reply = static_cast<redisReply*>(redisCommand(c, format, key));
  if (reply == nullptr) return std::string("command failed: ") + c->errstr;
  std::string wrong = check(*reply);
  freeReplyObject(reply);
  return wrong;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int GetSet() {
  const int connections = FLAGS_connections;
  FirstError error;
  FiberLatch connected(connections);
  FiberLatch go(1);
  FiberLatch done(connections);
  std::atomic<long> requests{0};
  for (int i = 0; i < connections; ++i) {
    StartFiberDetached([&, i] {
      std::string failure;
      redisContext* c = Connect(&failure);
      connected.CountDown();
      go.Wait();
      const std::string key = "key:" + std::to_string(i);
      for (int j = 0; c != nullptr && failure.empty() && j < FLAGS_pairs; ++j) {
        failure = Command(
            c,
            [](const redisReply& r) -> std::string {
              return r.type == REDIS_REPLY_STATUS && std::strcmp(r.str, "OK") == 0
                         ? ""
                         : "SET was not answered with OK";
            },
            "SET %s xxx", key.c_str());
        if (!failure.empty()) break;
        failure = Command(
            c,
            [](const redisReply& r) -> std::string {
              return r.type == REDIS_REPLY_STRING && r.len == 3 &&
                             std::memcmp(r.str, "xxx", 3) == 0
                         ? ""
                         : "GET did not return the value set";
            },
            "GET %s", key.c_str());
        if (failure.empty()) requests.fetch_add(2, std::memory_order_relaxed);
      }
      if (!failure.empty()) error.Set(failure);
      if (c != nullptr) redisFree(c);
      done.CountDown();
    });
  }
  connected.Wait();
  const auto start = std::chrono::steady_clock::now();
  go.CountDown();
  done.Wait();
  const double seconds = SecondsSince(start);
  if (const std::string what = error.Get(); !what.empty()) {
    std::printf("error: %s\n", what.c_str());
    return 1;
  }
  std::printf("requests %ld\nseconds %.6f\nrequests_per_second %.1f\n", requests.load(),
              seconds, static_cast<double>(requests.load()) / seconds);
  return 0;
}

int BlockingPops() {
  const int fibers = FLAGS_fibers;
  FirstError error;
  FiberLatch done(fibers);
  std::atomic<int> nil{0};
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "%g", FLAGS_timeout_seconds);
  const std::string format = std::string("BLPOP %s ") + timeout;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < fibers; ++i) {
    StartFiberDetached([&, i] {
      std::string failure;
      redisContext* c = Connect(&failure);
      if (c != nullptr) {
        const std::string key = "empty:" + std::to_string(i);
        failure = Command(
            c,
            [](const redisReply& r) -> std::string {
              return r.type == REDIS_REPLY_NIL ? "" : "BLPOP on an empty list was not nil";
            },
            format.c_str(), key.c_str());
        if (failure.empty()) nil.fetch_add(1, std::memory_order_relaxed);
        redisFree(c);
      }
      if (!failure.empty()) error.Set(failure);
      done.CountDown();
    });
  }
  done.Wait();
  const double seconds = SecondsSince(start);
  if (const std::string what = error.Get(); !what.empty()) {
    std::printf("error: %s\n", what.c_str());
    return 1;
  }
  std::printf("nil_replies %d\nseconds %.6f\n", nil.load(), seconds);
  return 0;
}

}  // namespace
}  // namespace weft

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "--mode=getset|blpop --port=P: hiredis in weft fibers against a redis-server on "
      "127.0.0.1 (benchmark/hook_bench.cc)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const bool getset = FLAGS_mode == "getset";
  const int clients = getset ? FLAGS_connections : FLAGS_fibers;
  if ((!getset && FLAGS_mode != "blpop") || FLAGS_port <= 0 || FLAGS_port > 65535 ||
      clients <= 0 || clients > weft::kMaxClients || FLAGS_pairs <= 0 ||
      FLAGS_timeout_seconds <= 0 || FLAGS_io_timeout_seconds <= 0 || FLAGS_workers <= 0 ||
      argc > 1) {
    std::printf("error: bad arguments; see --help\n");
    return 2;
  }
  weft::RuntimeOptions options;
  options.concurrency_hint = static_cast<std::size_t>(FLAGS_workers);
  options.scheduling_group_size = static_cast<std::size_t>(FLAGS_workers);
  weft::Runtime runtime(options);
  const int status = getset ? weft::GetSet() : weft::BlockingPops();
  std::fflush(stdout);
  return status;
}
