// What the stream-level tests of weft::io share (tcp_test.cc,
// tcp_ownership_test.cc): error checks, connected stream pairs, a round trip
// and the end of a stream.
#ifndef WEFT_TEST_IO_TCP_TEST_UTIL_H_
#define WEFT_TEST_IO_TCP_TEST_UTIL_H_

#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/io/tcp.h"
#include "test/test_util.h"

namespace weft::testing {

// Whether `got` is `want` (a std::errc or an io::Error; none: no error).
template <class E>
::testing::AssertionResult HasError(const std::error_code& got, E want) {
  if (got == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "got " << (got ? got.category().name() + (": " + got.message()) : "no error");
}
inline ::testing::AssertionResult Ok(const std::error_code& got) {
  return HasError(got, std::error_code());
}

// The client's end of a connection and the stream accepted for it.
template <class StreamType>
struct StreamPair {
  StreamType client, server;
};
using TcpPair = StreamPair<io::TcpStream>;

// A client connected to `listener` (with `address...`: a host and port, or a
// Unix path) and the stream accepted for it.
template <class Listener, class... Address>
auto Connect(Listener& listener, Address... address) {
  StreamPair<decltype(listener.Accept().stream)> pair;
  const std::error_code error = pair.client.Connect(address..., kGenerousTimeout);
  EXPECT_TRUE(Ok(error));
  if (error) return pair;
  auto accepted = listener.Accept(kGenerousTimeout);
  EXPECT_TRUE(Ok(accepted.error));
  pair.server = std::move(accepted.stream);
  return pair;
}

// A connected pair of TCP streams over 127.0.0.1.
inline TcpPair ConnectedTcpPair() {
  io::TcpListener listener;
  EXPECT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
  return Connect(listener, "127.0.0.1", listener.LocalPort());
}

// One small message each way.
inline void ExpectRoundTrip(io::Stream& a, io::Stream& b) {
  for (auto [from, to, text] : {std::tuple{&a, &b, "ping"}, std::tuple{&b, &a, "pong"}}) {
    char buf[4];
    EXPECT_TRUE(Ok(from->WriteAll(text, kGenerousTimeout).error));
    const io::IoResult r = to->ReadFull(buf, 4, kGenerousTimeout);
    EXPECT_TRUE(Ok(r.error));
    EXPECT_EQ(std::string(buf, r.bytes), text);
  }
}

// Read says the stream ended: 0 bytes, no error.
inline void ExpectEndOfStream(io::Stream& s) {
  char c;
  const io::IoResult r = s.Read(&c, 1, kGenerousTimeout);
  EXPECT_TRUE(Ok(r.error));
  EXPECT_EQ(r.bytes, 0u) << "the stream did not end";
}

}  // namespace weft::testing

#endif  // WEFT_TEST_IO_TCP_TEST_UTIL_H_
