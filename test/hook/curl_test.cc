// libcurl, unmodified, in fibers: curl_easy_perform waits in poll(2) on its
// non-blocking sockets (and its wake-up socket pair); with the hooks that
// poll parks the fiber, so 200 transfers run at once on two workers.
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hook/hook.h"
#include "runtime/fiber.h"
#include "runtime/io/tcp.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "test/hook/hook_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// 200 fibers fetch from an HTTP server on weft::io in the same runtime. The
// server holds every response until all 200 requests are in (or 60 s
// passed): it sees them all at once only if no curl_easy_perform blocks a
// worker.
TEST(HookCurl, TwoHundredTransfersAtOnceOnTwoWorkers) {
  ASSERT_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
  {
    Runtime runtime(testing::TwoWorkers());
    ASSERT_TRUE(hook::Enabled());
    constexpr int kClients = 200;
    io::TcpListener listener;
    ASSERT_FALSE(listener.Listen("127.0.0.1", 0));
    const std::uint16_t port = listener.LocalPort();
    FiberLatch all_in(kClients);
    std::atomic<int> concurrent{0}, most{0}, served{0};
    Fiber server([&] {
      std::vector<Fiber> handlers;
      for (int i = 0; i < kClients; ++i) {
        auto accepted = listener.Accept(std::chrono::seconds(60));
        if (accepted.error) break;
        handlers.emplace_back([&, stream = std::move(accepted.stream)]() mutable {
          std::string request;
          char buffer[1024];
          while (request.find("\r\n\r\n") == std::string::npos) {
            auto read = stream.Read(buffer, sizeof(buffer), std::chrono::seconds(60));
            if (read.error || read.bytes == 0) return;
            request.append(buffer, read.bytes);
          }
          const int now = concurrent.fetch_add(1) + 1;
          for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
          }
          all_in.CountDown();
          all_in.WaitFor(std::chrono::seconds(60));
          static const char kReply[] =
              "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
          if (!stream.WriteAll(kReply, sizeof(kReply) - 1).error) served.fetch_add(1);
          concurrent.fetch_sub(1);
        });
      }
      for (Fiber& handler : handlers) handler.Join();
    });
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
    std::atomic<int> ok{0};
    std::vector<Fiber> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.emplace_back([&] {
        CURL* curl = curl_easy_init();
        std::string body;
        long status = 0;
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        const CURLcode code = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
        if (code == CURLE_OK && status == 200 && body == "hello") ok.fetch_add(1);
      });
    }
    for (Fiber& client : clients) client.Join();
    server.Join();
    EXPECT_EQ(ok.load(), kClients);
    EXPECT_EQ(served.load(), kClients);
    EXPECT_EQ(most.load(), kClients) << "the server never had every request at once";
  }
  curl_global_cleanup();
}

}  // namespace
}  // namespace weft
