// Tests runtime/io/resolve.h and the resolver under it
// (runtime/io/detail/resolver.h): real lookups of localhost, literals and a
// name that cannot resolve; and, through the test seam, the sharing of
// queries, the cache, the deadline, the round robin and workers kept free
// while the name service is stuck.
#include "runtime/io/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/blocking.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/io/detail/resolver.h"
#include "runtime/io/tcp.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::WaitOrAbort;

constexpr std::chrono::seconds kLong{30};

bool IsLoopback(const io::Endpoint& endpoint) {
  if (endpoint.family() == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(endpoint.storage);
    return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
  }
  if (endpoint.family() == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(endpoint.storage);
    return IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr);
  }
  return false;
}

std::vector<std::string> Strings(const std::vector<io::Endpoint>& endpoints) {
  std::vector<std::string> out;
  for (const io::Endpoint& endpoint : endpoints) out.push_back(endpoint.ToString());
  return out;
}

// A list as getaddrinfo makes it, of IPv4 addresses 10.0.0.<last> for each of
// `lasts`, for a lookup function to return.
addrinfo* MakeList(const std::vector<int>& lasts, std::uint16_t port) {
  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  for (int last : lasts) {
    auto* ai =
        static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_in)));
    auto* in = reinterpret_cast<sockaddr_in*>(ai + 1);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl((10u << 24) | static_cast<unsigned>(last));
    ai->ai_family = AF_INET;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_protocol = IPPROTO_TCP;
    ai->ai_addrlen = sizeof(sockaddr_in);
    ai->ai_addr = reinterpret_cast<sockaddr*>(in);
    *tail = ai;
    tail = &ai->ai_next;
  }
  return head;
}

// Each test gets a fresh cache, counts the queries that reach the lookup
// function, and restores the real one at the end.
class ResolveTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // A test that failed early may have left a query waiting at the gate, and
    // TerminateRuntime() waits for it.
    if (!gate_.TryWait()) gate_.CountDown();
    runtime_.reset();
    io::detail::SetLookupFunctionForTesting(nullptr);
    io::detail::ClearCacheForTesting();
  }

  void StartRuntime(std::size_t ttl_ms = 60'000, std::size_t workers = 2) {
    io::detail::ClearCacheForTesting();
    RuntimeOptions options = OptionsWithWorkers(workers);
    options.resolve_cache_ttl_ms = ttl_ms;
    runtime_ = std::make_unique<Runtime>(options);
  }

  // The lookup function: counts, optionally waits for `gate_`, then answers
  // 10.0.0.1..3 for names ending in ".test" and asks the C library otherwise.
  void InstallLookup(bool gated) {
    io::detail::SetLookupFunctionForTesting(
        [this, gated](const char* node, const char* service, const addrinfo* hints,
                      addrinfo** result) {
          queries_.fetch_add(1);
          if (gated) gate_.Wait();
          const std::string name = node != nullptr ? node : "";
          if (name.size() > 5 && name.compare(name.size() - 5, 5, ".test") == 0) {
            *result = MakeList({1, 2, 3}, static_cast<std::uint16_t>(std::atoi(service)));
            return 0;
          }
          return io::detail::SystemGetAddrInfo(node, service, hints, result);
        });
  }

  std::unique_ptr<Runtime> runtime_;
  std::atomic<int> queries_{0};
  FiberLatch gate_{1};
};

template <class F>
void InFiber(F&& body) {
  Fiber fiber(std::forward<F>(body));
  fiber.Join();
}

TEST_F(ResolveTest, LocalhostResolvesToLoopbackAddressesWithThePort) {
  StartRuntime();
  InFiber([] {
    const io::ResolveResult result = io::Resolve("localhost", "8080", kLong);
    ASSERT_FALSE(result.error) << result.error_message;
    EXPECT_TRUE(result.error_message.empty());
    ASSERT_FALSE(result.addresses.empty());
    for (const io::Endpoint& endpoint : result.addresses) {
      EXPECT_TRUE(IsLoopback(endpoint)) << endpoint.ToString();
      EXPECT_EQ(8080, endpoint.port());
    }
  });
}

TEST_F(ResolveTest, ServiceNamesComeFromTheServicesDatabase) {
  StartRuntime();
  InFiber([] {
    const io::ResolveResult result = io::Resolve("127.0.0.1", "http", kLong);
    if (result.error)
      GTEST_SKIP() << "no \"http\" in /etc/services: " << result.error_message;
    ASSERT_EQ(1u, result.addresses.size());
    EXPECT_EQ("127.0.0.1:80", result.addresses[0].ToString());
  });
}

TEST_F(ResolveTest, LiteralsResolveWithoutAQuery) {
  StartRuntime();
  InstallLookup(/*gated=*/false);
  InFiber([] {
    struct Case {
      const char* host;
      const char* expected;
    };
    for (const Case& c :
         {Case{"127.0.0.1", "127.0.0.1:443"}, Case{"::1", "[::1]:443"},
          Case{"[::1]", "[::1]:443"}, Case{"2001:db8::7", "[2001:db8::7]:443"}}) {
      const io::ResolveResult result = io::Resolve(c.host, "443");
      ASSERT_FALSE(result.error) << c.host << ": " << result.error_message;
      EXPECT_EQ(std::vector<std::string>{c.expected}, Strings(result.addresses))
          << c.host;
    }
    // A deadline already past does not matter when no query is needed.
    EXPECT_FALSE(io::Resolve("10.1.2.3", "1", std::chrono::seconds(-1)).error);
  });
  EXPECT_EQ(0, queries_.load()) << "a literal went to the name service";
}

TEST_F(ResolveTest, ANameThatCannotResolveGivesAnErrorNamingIt) {
  StartRuntime();
  InFiber([] {
    // RFC 6761: names under .invalid never resolve.
    const io::ResolveResult result = io::Resolve("something.invalid", "80", kLong);
    ASSERT_TRUE(result.error);
    EXPECT_TRUE(result.addresses.empty());
    EXPECT_EQ(&io::ResolveCategory(), &result.error.category()) << result.error.message();
    EXPECT_STREQ("weft::resolve", result.error.category().name());
    EXPECT_TRUE(result.error.value() == EAI_NONAME ||
                result.error.value() == EAI_NODATA || result.error.value() == EAI_AGAIN ||
                result.error.value() == EAI_FAIL)
        << result.error.message();
    EXPECT_NE(std::string::npos, result.error_message.find("\"something.invalid\""))
        << result.error_message;
    EXPECT_NE(std::string::npos, result.error_message.find(result.error.message()));
    EXPECT_NE(std::string::npos, result.error_message.find("EAI_"))
        << result.error_message;
  });
}

TEST(ResolveCategory, MessagesSayWhatFailedAndWhatToCheck) {
  const std::error_code none(EAI_NONAME, io::ResolveCategory());
  EXPECT_NE(std::string::npos, none.message().find("no such host"));
  EXPECT_NE(std::string::npos, none.message().find("EAI_NONAME"));
  EXPECT_NE(std::string::npos, none.message().find(gai_strerror(EAI_NONAME)));
  const std::error_code service(EAI_SERVICE, io::ResolveCategory());
  EXPECT_NE(std::string::npos, service.message().find("port number"));
  const std::error_code again(EAI_AGAIN, io::ResolveCategory());
  EXPECT_NE(std::string::npos, again.message().find("try again"));
}

TEST_F(ResolveTest, ConcurrentLookupsOfOneNameShareOneQuery) {
  constexpr std::size_t kLookups = 50;
  StartRuntime(/*ttl_ms=*/0);  // no cache: only the sharing can save queries
  InstallLookup(/*gated=*/true);
  std::atomic<std::size_t> answered{0};
  for (std::size_t i = 0; i < kLookups; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      const io::ResolveResult result = io::Resolve("shared.test", "80", kLong);
      EXPECT_FALSE(result.error) << result.error_message;
      EXPECT_EQ(3u, result.addresses.size());
      answered.fetch_add(1);
    }));
  }
  // Every lookup has joined the query, which has reached the name service.
  WaitOrAbort(PollUntil(
      [&] {
        return io::detail::WaitingLookupsForTesting() == kLookups && queries_.load() >= 1;
      },
      "every lookup waiting for the query"));
  gate_.CountDown();
  WaitOrAbort(PollUntil([&] { return answered.load() == kLookups; }, "every answer"));
  EXPECT_EQ(1, queries_.load());
  // With the cache off, a later lookup asks again.
  InFiber([] { EXPECT_FALSE(io::Resolve("shared.test", "80", kLong).error); });
  EXPECT_EQ(2, queries_.load());
}

TEST_F(ResolveTest, AnswersAreCachedForTheTtlOnly) {
  StartRuntime(/*ttl_ms=*/60'000);
  InstallLookup(/*gated=*/false);
  InFiber([this] {
    for (int i = 0; i < 5; ++i) {
      EXPECT_FALSE(io::Resolve("cached.test", "80", kLong).error);
      EXPECT_FALSE(io::Resolve("localhost", "80", kLong).error);
    }
    EXPECT_EQ(2, queries_.load()) << "each name once";
    // Another service is another lookup.
    EXPECT_FALSE(io::Resolve("cached.test", "81", kLong).error);
    EXPECT_EQ(3, queries_.load());
  });
  runtime_.reset();
  StartRuntime(/*ttl_ms=*/1);
  queries_ = 0;
  InFiber([this] {
    EXPECT_FALSE(io::Resolve("expiring.test", "80", kLong).error);
    EXPECT_EQ(1, queries_.load());
    const auto expired = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
    this_fiber::SleepUntil(expired);  // lets the 1 ms TTL run out
    EXPECT_FALSE(io::Resolve("expiring.test", "80", kLong).error);
    EXPECT_EQ(2, queries_.load()) << "an expired answer was served";
  });
}

TEST_F(ResolveTest, FailuresAreNotCached) {
  StartRuntime(/*ttl_ms=*/60'000);
  InstallLookup(/*gated=*/false);
  InFiber([this] {
    EXPECT_TRUE(io::Resolve("something.invalid", "80", kLong).error);
    EXPECT_TRUE(io::Resolve("something.invalid", "80", kLong).error);
    EXPECT_EQ(2, queries_.load());
  });
}

TEST_F(ResolveTest, CachedAnswersRotateTheirAddresses) {
  StartRuntime();
  InstallLookup(/*gated=*/false);
  InFiber([] {
    std::vector<std::string> firsts;
    for (int i = 0; i < 4; ++i) {
      const io::ResolveResult result = io::Resolve("rotating.test", "80", kLong);
      ASSERT_EQ(3u, result.addresses.size()) << result.error_message;
      firsts.push_back(result.addresses[0].ToString());
      // Every address, each once, whatever the rotation.
      const std::vector<std::string> all = Strings(result.addresses);
      EXPECT_EQ(3u, std::set<std::string>(all.begin(), all.end()).size());
    }
    EXPECT_EQ((std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80",
                                        "10.0.0.1:80"}),
              firsts);
  });
}

// The name service hangs: the caller gives up at its deadline; the query goes
// on, and once it answers, the answer is in the cache.
TEST_F(ResolveTest, TheDeadlineBoundsTheWaitAndTheLateAnswerFillsTheCache) {
  StartRuntime();
  InstallLookup(/*gated=*/true);
  InFiber([] {
    const io::ResolveResult result =
        io::Resolve("stuck.test", "80", std::chrono::milliseconds(20));
    EXPECT_EQ(std::errc::timed_out, result.error) << result.error.message();
    EXPECT_NE(std::string::npos, result.error_message.find("\"stuck.test\""));
    EXPECT_NE(std::string::npos, result.error_message.find("deadline"));
  });
  // The deadline may pass before a pool thread has taken the query (a slow or
  // loaded machine, a sanitizer): it still runs, once, and is counted when it
  // reaches the lookup function.
  WaitOrAbort(PollUntil([this] { return queries_.load() == 1; },
                        "the timed-out query to reach the lookup function"));
  gate_.CountDown();
  ASSERT_TRUE(PollUntil(
      [] { return !io::Resolve("stuck.test", "80", std::chrono::seconds(0)).error; },
      "the late answer in the cache"));
  EXPECT_EQ(1, queries_.load());
}

// While every lookup is stuck in the name service, the two workers run other
// fibers to the end: the queries hold pool threads, not workers.
TEST_F(ResolveTest, ASlowNameServiceLeavesTheWorkersFree) {
  constexpr int kStuck = 8;
  constexpr int kOthers = 200;
  StartRuntime(60'000, /*workers=*/2);
  InstallLookup(/*gated=*/true);
  std::atomic<int> resolved{0};
  for (int i = 0; i < kStuck; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      const io::ResolveResult result =
          io::Resolve("slow" + std::to_string(i) + ".test", "80", kLong);
      EXPECT_FALSE(result.error) << result.error_message;
      resolved.fetch_add(1);
    }));
  }
  WaitOrAbort(
      PollUntil([&] { return queries_.load() == kStuck; }, "every query to start"));
  std::atomic<int> others{0};
  for (int i = 0; i < kOthers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      for (int step = 0; step < 10; ++step) this_fiber::Yield();
      others.fetch_add(1);
    }));
  }
  WaitOrAbort(PollUntil([&] { return others.load() == kOthers; }, "the other fibers"));
  EXPECT_EQ(0, resolved.load()) << "a lookup finished while the name service hung";
  gate_.CountDown();
  WaitOrAbort(PollUntil([&] { return resolved.load() == kStuck; }, "every lookup"));
}

TEST_F(ResolveTest, WorksFromAPlainThreadWithAndWithoutARuntime) {
  const io::ResolveResult before = io::Resolve("localhost", "80");
  ASSERT_FALSE(before.error) << before.error_message;
  EXPECT_FALSE(before.addresses.empty());
  StartRuntime();
  InstallLookup(/*gated=*/true);
  const io::ResolveResult late =
      io::Resolve("thread.test", "80", std::chrono::milliseconds(10));
  EXPECT_EQ(std::errc::timed_out, late.error);
  gate_.CountDown();
  const io::ResolveResult result = io::Resolve("thread.test", "80", kLong);
  EXPECT_FALSE(result.error) << result.error_message;
  EXPECT_EQ(1, queries_.load());
}

// Inside RunBlocking the lookup runs on its own pool thread: with a pool of
// one thread, queueing the query behind the caller would wait forever.
TEST_F(ResolveTest, InsideRunBlockingTheQueryRunsOnThePoolThreadItself) {
  io::detail::ClearCacheForTesting();
  RuntimeOptions options = OptionsWithWorkers(2);
  options.blocking_pool_max_threads = 1;
  runtime_ = std::make_unique<Runtime>(options);
  InstallLookup(/*gated=*/false);
  InFiber([] {
    const io::ResolveResult result =
        RunBlocking([] { return io::Resolve("nested.test", "80", kLong); });
    EXPECT_FALSE(result.error) << result.error_message;
    EXPECT_EQ(3u, result.addresses.size());
  });
  EXPECT_EQ(1, queries_.load());
}

TEST_F(ResolveTest, TcpStreamConnectsToTheResolvedAddresses) {
  StartRuntime();
  InFiber([] {
    io::TcpListener listener;
    ASSERT_FALSE(listener.Listen("127.0.0.1", 0));
    const io::ResolveResult result =
        io::Resolve("localhost", std::to_string(listener.LocalPort()), kLong);
    ASSERT_FALSE(result.error) << result.error_message;
    io::TcpStream stream;
    // localhost may list ::1 first, where nobody listens: Connect moves on.
    EXPECT_FALSE(stream.Connect(result.addresses, kLong));
    auto [server, error] = listener.Accept(kLong);
    ASSERT_FALSE(error) << error.message();
    EXPECT_EQ(std::errc::invalid_argument, io::TcpStream().Connect({}, kLong));
  });
}

// ---- GetAddrInfo, the entry point of the getaddrinfo hook ------------------------

TEST_F(ResolveTest, GetAddrInfoGivesAListTheCLibraryFrees) {
  StartRuntime();
  InFiber([] {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    for (int round = 0; round < 2; ++round) {  // a query, then the cache
      addrinfo* list = nullptr;
      ASSERT_EQ(0, io::detail::GetAddrInfo("localhost", "80", &hints, &list, kLong));
      ASSERT_NE(nullptr, list);
      ASSERT_NE(nullptr, list->ai_canonname);
      EXPECT_STREQ("localhost", list->ai_canonname);
      for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        ASSERT_EQ(AF_INET, ai->ai_family);
        EXPECT_EQ(SOCK_STREAM, ai->ai_socktype);
        ASSERT_EQ(sizeof(sockaddr_in), ai->ai_addrlen);
        const auto* in = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
        EXPECT_EQ(80, ntohs(in->sin_port));
        EXPECT_EQ(127u, ntohl(in->sin_addr.s_addr) >> 24);
      }
      freeaddrinfo(list);  // the C library's; the sanitizers check it
    }
    // Literals and null hints go straight to the C library.
    addrinfo* literal = nullptr;
    ASSERT_EQ(0, io::detail::GetAddrInfo("::1", "443", nullptr, &literal, kLong));
    EXPECT_EQ(AF_INET6, literal->ai_family);
    freeaddrinfo(literal);
  });
}

TEST_F(ResolveTest, GetAddrInfoReturnsTheFailureAndTimesOutWithEaiAgain) {
  StartRuntime();
  InstallLookup(/*gated=*/true);
  InFiber([] {
    addrinfo* list = nullptr;
    // Through the out-of-line accessors: the fiber may resume on the other
    // worker, and errno's address taken before the call would be the first
    // worker's (glibc's __errno_location() is const; docs/io.md).
    detail::SetErrno(0);
    EXPECT_EQ(EAI_AGAIN, io::detail::GetAddrInfo("late.test", "80", nullptr, &list,
                                                 std::chrono::milliseconds(10)));
    EXPECT_EQ(ETIMEDOUT, detail::Errno());
    EXPECT_EQ(nullptr, list);
  });
  gate_.CountDown();
  io::detail::SetLookupFunctionForTesting(nullptr);
  InFiber([] {
    addrinfo* list = nullptr;
    const int code =
        io::detail::GetAddrInfo("something.invalid", "80", nullptr, &list, kLong);
    EXPECT_NE(0, code);
    EXPECT_EQ(nullptr, list);
  });
}

}  // namespace
}  // namespace weft
