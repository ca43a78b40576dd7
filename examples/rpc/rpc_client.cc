// weft_rpc_client: a demonstration of rpc::Channel (channel.h), the
// multiplexing client: one connection, many fibers calling at once.
//
//   weft_rpc_server --port=0            # prints "listening 127.0.0.1:<port>"
//   weft_rpc_client --port=<port> --calls=100
//
// For each method (echo, sleep, fanout) it starts --calls fibers that call at
// once over the one connection (weft::Async: a fiber each, its result a
// future; WhenAll collects them) and checks every reply. The sleep calls
// overlap on the server, so they take about one sleep of wall time, not
// --calls of them. Then the failure cases: an unknown method, and a deadline:
// "sleep" for 500 ms with a 100 ms deadline must fail with timed_out, and its
// reply, coming later, must be dropped.
//
// Prints a summary on stdout. Exits 0 if every call behaved as expected, 1 if
// not (or the server cannot be reached), 2 for a flag out of range. It talks
// to 127.0.0.1 only, makes at most 3 * --calls + 4 calls, each with a
// deadline, and stops by itself.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "examples/rpc/channel.h"
#include "examples/rpc/frame.h"
#include "examples/server_support.h"
#include "gflags/gflags.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/when_all.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"

DEFINE_int32(port, 0, "the server's port on 127.0.0.1, 1..65535 (required)");
DEFINE_int32(workers, 2,
             "fiber worker threads (RuntimeOptions::concurrency_hint), 1..1024");
DEFINE_int32(calls, 100, "concurrent calls of each method, 1..10000");
DEFINE_int32(sleep_ms, 20, "how long each \"sleep\" call sleeps on the server, 0..1000");
DEFINE_int32(deadline_ms, 5000,
             "the deadline of each call (but the deadline case's), 1..60000");

namespace {

constexpr char kProgram[] = "weft_rpc_client";

using Clock = std::chrono::steady_clock;

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string SleepPayload(std::uint32_t ms) {
  unsigned char bytes[4];
  rpc::PutBigEndian(bytes, ms, 4);
  return std::string(reinterpret_cast<const char*>(bytes), 4);
}

// How one call went.
struct Outcome {
  bool ok = false;
  std::string problem;  // when not ok
  double latency_ms = 0;
};

// Makes `calls` calls of `method` at once, each from its own fiber, and
// checks each reply against `expected(i)`. Prints one line; true if all
// succeeded.
bool RunConcurrently(rpc::Channel& channel, const char* name, rpc::Method method,
                     int calls, const std::function<std::string(int)>& payload,
                     const std::function<std::string(int)>& expected) {
  const Clock::time_point start = Clock::now();
  std::vector<weft::Future<Outcome>> futures;
  futures.reserve(static_cast<std::size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    auto call = [&, i] {
      const Clock::time_point begin = Clock::now();
      const weft::Deadline deadline = std::chrono::milliseconds(FLAGS_deadline_ms);
      // The fiber parks here; the channel's reader fiber completes the call.
      rpc::Reply reply = weft::BlockingGet(channel.Call(method, payload(i), deadline));
      Outcome outcome;
      outcome.latency_ms = MillisecondsSince(begin);
      if (reply.error) {
        outcome.problem =
            "call " + std::to_string(i) + " failed: " + reply.error.message();
      } else if (reply.payload != expected(i)) {
        outcome.problem = "call " + std::to_string(i) + ": wrong reply of " +
                          std::to_string(reply.payload.size()) + " bytes";
      } else {
        outcome.ok = true;
      }
      return outcome;
    };
    try {
      futures.push_back(weft::Async(std::move(call)));
    } catch (const std::system_error& e) {
      // No stack for another fiber: wait for the calls already started (they
      // use this function's arguments), then report.
      std::fprintf(stderr, "%s: cannot start call %d: %s\n", kProgram, i, e.what());
      break;
    }
  }
  // Every call's future, in order, once all have ended.
  std::vector<Outcome> outcomes = weft::BlockingGet(weft::WhenAll(std::move(futures)));
  const double wall_ms = MillisecondsSince(start);

  std::vector<double> latencies;
  const Outcome* failed = nullptr;
  for (const Outcome& outcome : outcomes) {
    latencies.push_back(outcome.latency_ms);
    if (!outcome.ok && failed == nullptr) failed = &outcome;
  }
  std::sort(latencies.begin(), latencies.end());
  const auto ok = std::count_if(outcomes.begin(), outcomes.end(),
                                [](const Outcome& outcome) { return outcome.ok; });
  std::printf("%-7s %lld/%d ok in %.1f ms wall", name, static_cast<long long>(ok), calls,
              wall_ms);
  if (!latencies.empty()) {
    std::printf("; latency p50 %.2f ms, max %.2f ms", latencies[latencies.size() / 2],
                latencies.back());
  }
  std::printf("\n");
  if (failed != nullptr)
    std::printf("        first failure: %s\n", failed->problem.c_str());
  return ok == calls;
}

// An unknown method fails with RpcError::kUnknownMethod; the connection stays
// usable.
bool CheckUnknownMethod(rpc::Channel& channel) {
  const rpc::Reply reply = weft::BlockingGet(channel.Call(
      static_cast<rpc::Method>(99), "?", std::chrono::milliseconds(FLAGS_deadline_ms)));
  const bool ok = reply.error == rpc::RpcError::kUnknownMethod;
  std::printf("unknown method: %s (%s)\n", ok ? "failed as expected" : "UNEXPECTED",
              reply.error ? reply.error.message().c_str() : "succeeded");
  return ok;
}

// A call whose deadline passes fails with timed_out, and its late reply is
// dropped by the channel; the connection stays usable.
bool CheckDeadline(rpc::Channel& channel) {
  constexpr std::uint32_t kSleepMs = 500;
  constexpr auto kDeadline = std::chrono::milliseconds(100);
  const std::uint64_t late_before = channel.late_replies();
  const Clock::time_point start = Clock::now();
  const rpc::Reply reply = weft::BlockingGet(
      channel.Call(rpc::Method::kSleep, SleepPayload(kSleepMs), kDeadline));
  const double failed_after_ms = MillisecondsSince(start);
  if (reply.error != std::errc::timed_out) {
    std::printf("deadline: UNEXPECTED: sleep(%u ms) with a %lld ms deadline %s%s\n",
                kSleepMs, static_cast<long long>(kDeadline.count()),
                reply.error ? "failed with " : "succeeded",
                reply.error ? reply.error.message().c_str() : "");
    return false;
  }
  // The server replies when its sleep ends; the channel must drop that reply.
  // (Polling observes the counter; it synchronizes nothing.)
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(5);
  while (channel.late_replies() == late_before && Clock::now() < give_up) {
    weft::this_fiber::SleepFor(std::chrono::milliseconds(10));
  }
  const bool dropped = channel.late_replies() > late_before;
  std::printf(
      "deadline: sleep(%u ms) with a %lld ms deadline failed with timed_out after "
      "%.1f ms; its late reply %s\n",
      kSleepMs, static_cast<long long>(kDeadline.count()), failed_after_ms,
      dropped ? "came and was discarded" : "NEVER CAME (within 5 s)");
  return dropped;
}

int RunDemo() {
  rpc::Channel channel;
  if (const std::error_code error = channel.Connect(
          "127.0.0.1", static_cast<std::uint16_t>(FLAGS_port), std::chrono::seconds(5))) {
    std::fprintf(stderr, "%s: cannot connect to 127.0.0.1:%d: %s\n", kProgram, FLAGS_port,
                 error.message().c_str());
    return 1;
  }
  const int calls = FLAGS_calls;
  bool ok = true;
  auto numbered = [](int i) { return "call " + std::to_string(i); };
  ok &= RunConcurrently(channel, "echo", rpc::Method::kEcho, calls, numbered, numbered);
  const std::string sleep = SleepPayload(static_cast<std::uint32_t>(FLAGS_sleep_ms));
  ok &= RunConcurrently(
      channel, "sleep", rpc::Method::kSleep, calls, [&](int) { return sleep; },
      [](int) { return std::string(); });
  // The server echoes the payload from both of its backends.
  ok &= RunConcurrently(channel, "fanout", rpc::Method::kFanout, calls, numbered,
                        [&](int i) { return numbered(i) + numbered(i); });
  ok &= CheckUnknownMethod(channel);
  ok &= CheckDeadline(channel);
  // After the failures the connection still serves calls.
  ok &= RunConcurrently(channel, "echo", rpc::Method::kEcho, 1, numbered, numbered);
  std::printf(ok ? "OK: every call behaved as expected\n" : "FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "weft_rpc_client --port=N [--calls=N] [--workers=N] [--weft_...]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  examples::CheckNoArguments(kProgram, argc, argv);
  if (FLAGS_port == 0) {
    std::fprintf(stderr,
                 "%s: --port is required: the server's port on 127.0.0.1, 1..65535\n",
                 kProgram);
    return 2;
  }
  examples::CheckFlagRange(kProgram, "port", FLAGS_port, 1, 65535);
  examples::CheckFlagRange(kProgram, "workers", FLAGS_workers, 1, 1024);
  examples::CheckFlagRange(kProgram, "calls", FLAGS_calls, 1, 10000);
  examples::CheckFlagRange(kProgram, "sleep_ms", FLAGS_sleep_ms, 0,
                 static_cast<std::int32_t>(rpc::kMaxSleepMs));
  examples::CheckFlagRange(kProgram, "deadline_ms", FLAGS_deadline_ms, 1, 60000);
  const weft::RuntimeOptions options = examples::RuntimeOptionsOrExit(kProgram, FLAGS_workers);

  weft::Runtime runtime(options);
  return RunDemo();  // the channel closes (its reader fiber ends) before ~Runtime
}
