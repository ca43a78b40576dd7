// EchoClients: the client side of the echo workloads W11 and W12
// (docs/benchmarks.md), driven by one thread through one epoll instance: many
// loopback connections to an echo server on 127.0.0.1, each sending a message,
// waiting for all of its echo, checking it byte for byte, and sending the next.
//
// Every message is different (its bytes are a function of the connection and
// of the message's number), so an echo that is stale, short, shifted or
// belongs to another connection is caught: it is an error, never a figure.
//
// Not thread-safe: one thread opens, drives and closes the connections.
#ifndef WEFT_BENCHMARK_NET_ECHO_CLIENTS_H_
#define WEFT_BENCHMARK_NET_ECHO_CLIENTS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmark/net/latency_histogram.h"

namespace weft::bench::net {

using Clock = std::chrono::steady_clock;

struct EchoClientOptions {
  // The server's port on 127.0.0.1 (the only address the clients connect to).
  int port = 0;
  // Connections to open, 1 to kMaxConnections.
  int connections = 1000;
  // Bytes per message, 1 to kMaxMessageBytes.
  int message_bytes = 64;
  // Connections opened but not yet served (their first echo not yet back) at
  // any moment while opening: well below any listen backlog, so that no
  // handshake waits for a SYN to be retransmitted.
  int max_opening = 128;
  // How long opening every connection and its first round trip may take.
  Clock::duration open_timeout = std::chrono::seconds(60);
};

inline constexpr int kMaxConnections = 100'000;
inline constexpr int kMaxMessageBytes = 65'536;

// What a ping-pong run measured.
struct PingPongResult {
  std::uint64_t requests = 0;  // round trips completed within the run
  double seconds = 0;          // from the first send to the end of the run
  LatencyHistogram latencies;  // each round trip, send to the echo's last byte
};

class EchoClients {
 public:
  explicit EchoClients(EchoClientOptions options);
  // Resets every connection that is still open (see Close()).
  ~EchoClients();
  EchoClients(const EchoClients&) = delete;
  EchoClients& operator=(const EchoClients&) = delete;

  // Opens every connection and makes each do one round trip, so that each is
  // known to be accepted and served when this returns. Returns "" or what went
  // wrong (a refused connection, a wrong echo, the open_timeout passing).
  std::string Open();

  // W11: every connection sends a message, waits for its echo, and sends the
  // next, until `duration` has passed or `max_requests` round trips are done;
  // the echoes still on their way are then awaited (up to `drain_timeout`) and
  // checked, but not counted. Returns "" or what went wrong.
  std::string PingPong(Clock::duration duration, std::uint64_t max_requests,
                       Clock::duration drain_timeout, PingPongResult* result);

  // W12: "" if every connection is still open with nothing to read (the server
  // closed none and sent nothing unasked), otherwise what is wrong.
  std::string CheckQuiet();

  // Closes every connection with a reset (SO_LINGER 0), which leaves no
  // TIME_WAIT socket behind on this side: a full run opens tens of thousands
  // of connections.
  void Close();

 private:
  enum class State { kConnecting, kSending, kAwaiting, kIdle };
  struct Connection {
    int fd = -1;
    State state = State::kConnecting;
    std::uint64_t round = 0;  // the number of the message being exchanged
    int sent = 0;             // bytes of it written
    int received = 0;         // bytes of its echo read
    bool wants_output = false;
    Clock::time_point sent_at;
  };

  std::string StartConnect(int index);
  // Writes what is left of the connection's message. Returns "" or an error.
  std::string Send(int index, Clock::time_point now);
  // Reads what has arrived of the echo; sets *complete when it is all there and
  // checked. Returns "" or an error.
  std::string Receive(int index, bool* complete);
  // On a ready event of connection `index` while opening.
  std::string OnOpening(int index, Clock::time_point now, int* served);
  void SetInterest(int index, bool output);
  void FillMessage(int index, std::uint64_t round, char* out) const;
  std::string Describe(int index) const;

  EchoClientOptions options_;
  int epoll_ = -1;
  std::vector<Connection> connections_;
  // Echo bytes as they arrive, message_bytes per connection.
  std::vector<char> inbound_;
  std::vector<char> scratch_;
};

}  // namespace weft::bench::net

#endif  // WEFT_BENCHMARK_NET_ECHO_CLIENTS_H_
