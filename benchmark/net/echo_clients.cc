#include "benchmark/net/echo_clients.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace weft::bench::net {

namespace {

constexpr int kEventsPerWait = 256;

std::uint64_t Mix(std::uint64_t x) {
  // splitmix64's finalizer: every input bit moves every output bit.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string SystemError(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Milliseconds from now until `deadline` for epoll_wait, rounded up, 0 if past.
int MillisecondsUntil(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 1'000'000));
}

}  // namespace

EchoClients::EchoClients(EchoClientOptions options) : options_(options) {}

EchoClients::~EchoClients() { Close(); }

std::string EchoClients::Describe(int index) const {
  return "connection " + std::to_string(index);
}

void EchoClients::FillMessage(int index, std::uint64_t round, char* out) const {
  const std::uint64_t seed = Mix((static_cast<std::uint64_t>(index) << 32) ^ round);
  const int bytes = options_.message_bytes;
  for (int offset = 0, k = 0; offset < bytes; offset += 8, ++k) {
    const std::uint64_t word = Mix(seed ^ static_cast<std::uint64_t>(k));
    std::memcpy(out + offset, &word,
                static_cast<std::size_t>(std::min(8, bytes - offset)));
  }
}

void EchoClients::SetInterest(int index, bool output) {
  Connection& c = connections_[index];
  epoll_event event{};
  event.events = output ? EPOLLOUT : EPOLLIN;
  event.data.u32 = static_cast<std::uint32_t>(index);
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &event);
  c.wants_output = output;
}

std::string EchoClients::StartConnect(int index) {
  Connection& c = connections_[index];
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return SystemError(Describe(index) + ": socket");
  const int on = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons(static_cast<std::uint16_t>(options_.port));
  if (connect(c.fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0 &&
      errno != EINPROGRESS) {
    return SystemError(Describe(index) +
                       ": connect to 127.0.0.1:" + std::to_string(options_.port));
  }
  c.state = State::kConnecting;
  c.wants_output = true;
  epoll_event event{};
  event.events = EPOLLOUT;
  event.data.u32 = static_cast<std::uint32_t>(index);
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &event) != 0)
    return SystemError(Describe(index) + ": epoll_ctl");
  return "";
}

std::string EchoClients::Send(int index, Clock::time_point now) {
  Connection& c = connections_[index];
  const int bytes = options_.message_bytes;
  if (c.sent == 0) c.sent_at = now;
  c.state = State::kSending;
  FillMessage(index, c.round, scratch_.data());
  while (c.sent < bytes) {
    const ssize_t n = send(c.fd, scratch_.data() + c.sent,
                           static_cast<std::size_t>(bytes - c.sent), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!c.wants_output) SetInterest(index, true);
        return "";
      }
      return SystemError(Describe(index) + ": send");
    }
    c.sent += static_cast<int>(n);
  }
  c.state = State::kAwaiting;
  c.received = 0;
  if (c.wants_output) SetInterest(index, false);
  return "";
}

std::string EchoClients::Receive(int index, bool* complete) {
  Connection& c = connections_[index];
  const int bytes = options_.message_bytes;
  char* echo = inbound_.data() + static_cast<std::size_t>(index) * bytes;
  *complete = false;
  // Never more than the rest of this echo: a byte beyond it would be a byte the
  // server made up, and is caught as the start of a wrong next echo.
  const ssize_t n =
      read(c.fd, echo + c.received, static_cast<std::size_t>(bytes - c.received));
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return "";
    return SystemError(Describe(index) + ": read");
  }
  if (n == 0) {
    return Describe(index) + ": the server closed it after " +
           std::to_string(c.received) + " of " + std::to_string(bytes) +
           " echo bytes of message " + std::to_string(c.round);
  }
  c.received += static_cast<int>(n);
  if (c.received < bytes) return "";
  FillMessage(index, c.round, scratch_.data());
  if (std::memcmp(echo, scratch_.data(), static_cast<std::size_t>(bytes)) != 0) {
    int first = 0;
    while (echo[first] == scratch_[first]) ++first;
    char detail[128];
    std::snprintf(detail, sizeof(detail),
                  ": byte %d of the echo of message %llu is 0x%02x, "
                  "not 0x%02x",
                  first, static_cast<unsigned long long>(c.round),
                  static_cast<unsigned char>(echo[first]),
                  static_cast<unsigned char>(scratch_[first]));
    return Describe(index) + detail;
  }
  *complete = true;
  c.state = State::kIdle;
  c.sent = 0;
  c.received = 0;
  ++c.round;
  return "";
}

std::string EchoClients::OnOpening(int index, Clock::time_point now, int* served) {
  Connection& c = connections_[index];
  switch (c.state) {
    case State::kConnecting: {
      int error = 0;
      socklen_t length = sizeof(error);
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length);
      if (error != 0) {
        errno = error;
        return SystemError(Describe(index) +
                           ": connect to 127.0.0.1:" + std::to_string(options_.port));
      }
      return Send(index, now);
    }
    case State::kSending:
      return Send(index, now);
    case State::kAwaiting: {
      bool complete = false;
      std::string error = Receive(index, &complete);
      if (complete) ++*served;
      return error;
    }
    case State::kIdle:
      break;
  }
  return CheckQuiet();
}

std::string EchoClients::Open() {
  const int count = options_.connections;
  if (count < 1 || count > kMaxConnections) {
    return "connections is " + std::to_string(count) + "; it must be 1 to " +
           std::to_string(kMaxConnections);
  }
  if (options_.message_bytes < 1 || options_.message_bytes > kMaxMessageBytes) {
    return "message_bytes is " + std::to_string(options_.message_bytes) +
           "; it must be 1 to " + std::to_string(kMaxMessageBytes);
  }
  if (options_.port < 1 || options_.port > 65535) {
    return "port is " + std::to_string(options_.port) + "; it must be 1 to 65535";
  }
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return SystemError("epoll_create1");
  connections_.assign(static_cast<std::size_t>(count), Connection{});
  inbound_.assign(static_cast<std::size_t>(count) * options_.message_bytes, 0);
  scratch_.assign(static_cast<std::size_t>(options_.message_bytes), 0);

  const Clock::time_point deadline = Clock::now() + options_.open_timeout;
  const int max_opening = std::max(1, options_.max_opening);
  int started = 0;
  int served = 0;
  epoll_event events[kEventsPerWait];
  while (served < count) {
    while (started < count && started - served < max_opening) {
      std::string error = StartConnect(started++);
      if (!error.empty()) return error;
    }
    const int timeout = MillisecondsUntil(deadline);
    const int ready = epoll_wait(epoll_, events, kEventsPerWait, timeout);
    if (ready < 0 && errno != EINTR) return SystemError("epoll_wait");
    const Clock::time_point now = Clock::now();
    for (int i = 0; i < ready; ++i) {
      std::string error = OnOpening(static_cast<int>(events[i].data.u32), now, &served);
      if (!error.empty()) return error;
    }
    if (ready == 0 && timeout == 0) {
      return "only " + std::to_string(served) + " of " + std::to_string(count) +
             " connections were opened and echoed a first message in time";
    }
  }
  return "";
}

std::string EchoClients::PingPong(Clock::duration duration, std::uint64_t max_requests,
                                  Clock::duration drain_timeout, PingPongResult* result) {
  const int count = static_cast<int>(connections_.size());
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop_at = start + duration;
  for (int index = 0; index < count; ++index) {
    if (connections_[index].state != State::kIdle)
      return Describe(index) + " is not open";
    std::string error = Send(index, start);
    if (!error.empty()) return error;
  }
  // Connections with a message or an echo on its way.
  int busy = count;
  bool stopping = false;
  Clock::time_point end;
  Clock::time_point drain_deadline;
  epoll_event events[kEventsPerWait];
  while (!stopping || busy > 0) {
    const int timeout = MillisecondsUntil(stopping ? drain_deadline : stop_at);
    const int ready = epoll_wait(epoll_, events, kEventsPerWait, timeout);
    if (ready < 0 && errno != EINTR) return SystemError("epoll_wait");
    for (int i = 0; i < ready; ++i) {
      const int index = static_cast<int>(events[i].data.u32);
      Connection& c = connections_[index];
      const Clock::time_point now = Clock::now();
      std::string error;
      if (c.state == State::kSending) {
        error = Send(index, now);
      } else if (c.state == State::kAwaiting) {
        bool complete = false;
        error = Receive(index, &complete);
        if (complete && stopping) {
          --busy;
        } else if (complete) {
          result->latencies.Record(
              std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent_at)
                  .count());
          ++result->requests;
          if (now >= stop_at || result->requests >= max_requests) {
            stopping = true;
            end = now;
            drain_deadline = now + drain_timeout;
            --busy;
          } else {
            error = Send(index, now);
          }
        }
      } else {
        error = CheckQuiet();
      }
      if (!error.empty()) return error;
    }
    if (!stopping && Clock::now() >= stop_at) {
      stopping = true;
      end = Clock::now();
      drain_deadline = end + drain_timeout;
    }
    if (stopping && busy > 0 && ready == 0 && timeout == 0) {
      return std::to_string(busy) + " echoes did not come back after the run ended";
    }
  }
  result->seconds = std::chrono::duration<double>(end - start).count();
  return "";
}

std::string EchoClients::CheckQuiet() {
  for (std::size_t index = 0; index < connections_.size(); ++index) {
    const Connection& c = connections_[index];
    if (c.state != State::kIdle) continue;
    char byte;
    const ssize_t n = recv(c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
      return Describe(static_cast<int>(index)) + ": the server closed it while idle";
    if (n > 0)
      return Describe(static_cast<int>(index)) + ": the server sent bytes unasked";
    if (errno != EAGAIN) return SystemError(Describe(static_cast<int>(index)));
  }
  return "";
}

void EchoClients::Close() {
  const linger reset{1, 0};
  for (Connection& c : connections_) {
    if (c.fd < 0) continue;
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(c.fd);
    c.fd = -1;
  }
  if (epoll_ >= 0) close(epoll_);
  epoll_ = -1;
}

}  // namespace weft::bench::net
