// weft_http_hello: a minimal HTTP/1.1 keep-alive server, one fiber per
// connection, answering every request with "Hello, World!".
//
//   weft_http_hello --port=0 --workers=2
//   curl -v http://127.0.0.1:<port>/        (from another terminal)
//
// What it shows: a protocol parser written as plain sequential code in a
// fiber. Each Read() parks the fiber until bytes come; whatever arrived is
// parsed, every complete request in it is answered, and the replies to one
// read go out in one write (pipelined requests cost one system call each way).
// A request split across reads waits in `pending` for the rest.
//
// The HTTP it speaks:
//   - request line "METHOD target HTTP/1.1" or "HTTP/1.0", header fields up to
//     the empty line; lines end with CRLF (a bare LF is accepted, RFC 9112 2.2);
//   - keep-alive: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
//     "Connection: keep-alive"; the reply says "Connection: close" when the
//     server is going to close;
//   - a Content-Length body is read and discarded; Transfer-Encoding gets
//     501 and a close;
//   - every request gets 200 with Content-Type: text/plain, Content-Length: 13
//     and the body "Hello, World!" (no body for HEAD, as HTTP requires);
//   - a malformed request (bad request line, bad header line, an HTTP/1.1
//     request without Host, a bad Content-Length) or a header block over 8 KiB
//     gets 400 and a close; replies to the good requests before it still go.
// Not handled, being beside the point: chunked bodies, Expect: 100-continue,
// a Date header, and timeouts on idle or slow clients (a production server
// gives each Read a weft::Deadline).
//
// Command line, stdout and signals as weft_echo_server's (see there):
//   --port=N (0..65535, 0: any free port)  --workers=N (1..1024)  --weft_*
// First stdout line "listening 127.0.0.1:<port>"; logs on stderr; SIGTERM or
// SIGINT: orderly shutdown, exit 0; a flag out of range: exit 2.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "examples/server_support.h"
#include "gflags/gflags.h"
#include "runtime/deadline.h"
#include "runtime/fiber.h"
#include "runtime/io/tcp.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_mutex.h"

DEFINE_int32(port, 0,
             "TCP port to listen on at 127.0.0.1, 0..65535 (0: pick a free port)");
DEFINE_int32(workers, 2,
             "fiber worker threads (RuntimeOptions::concurrency_hint), 1..1024");

namespace {

constexpr char kProgram[] = "weft_http_hello";

// ---- HTTP -------------------------------------------------------------------

// The request line, header fields and the empty line that ends them.
constexpr std::size_t kMaxHeaderBytes = 8192;

constexpr std::string_view kOkHeaders =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
constexpr std::string_view kBody = "Hello, World!";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
    "Connection: close\r\n\r\nBad Request\n";
constexpr std::string_view kNotImplemented =
    "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n"
    "Connection: close\r\n\r\nNot Implemented\n";

// What one request asks of the connection.
struct Request {
  bool head = false;       // HEAD: the reply has no body
  bool http10 = false;     // HTTP/1.0: keep-alive only when asked for
  bool keep_alive = true;  // the connection stays open after the reply
  std::uint64_t body_length = 0;
};

enum class ParseResult { kOk, kBadRequest, kNotImplemented };

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Takes the next line off `rest` (without its LF or CRLF) into `line`;
// false when no whole line is left.
bool NextLine(std::string_view& rest, std::string_view& line) {
  const std::size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) return false;
  line = rest.substr(0, newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  rest.remove_prefix(newline + 1);
  return true;
}

// The length of the header block at the start of `data`, through its empty
// line; 0 while the empty line has not arrived.
std::size_t HeaderBlockLength(std::string_view data) {
  std::string_view rest = data, line;
  while (NextLine(rest, line)) {
    if (line.empty()) return data.size() - rest.size();
  }
  return 0;
}

// Parses one whole header block (HeaderBlockLength bytes) into `request`.
ParseResult ParseRequest(std::string_view block, Request& request) {
  std::string_view line;
  NextLine(block, line);
  // Request line: method SP request-target SP HTTP-version.
  const std::size_t space1 = line.find(' ');
  const std::size_t space2 =
      space1 == std::string_view::npos ? space1 : line.find(' ', space1 + 1);
  if (space2 == std::string_view::npos) return ParseResult::kBadRequest;
  const std::string_view method = line.substr(0, space1);
  const std::string_view target = line.substr(space1 + 1, space2 - space1 - 1);
  const std::string_view version = line.substr(space2 + 1);
  if (!IsToken(method) || target.empty()) return ParseResult::kBadRequest;
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return ParseResult::kBadRequest;
  }
  if (version == "HTTP/1.0") {
    request.http10 = true;
  } else if (version != "HTTP/1.1") {
    return ParseResult::kBadRequest;
  }
  request.head = method == "HEAD";

  // Header fields: name ":" OWS value OWS.
  bool has_host = false, has_length = false, close = false, keep_alive = false;
  while (NextLine(block, line) && !line.empty()) {
    const std::size_t colon = line.find(':');
    // No space before the colon, no obsolete line folding (RFC 9112 5.1, 5.2).
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return ParseResult::kBadRequest;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimSpaces(line.substr(colon + 1));
    for (char c : value) {
      if (c == '\r' || c == '\0') return ParseResult::kBadRequest;
    }
    if (EqualsIgnoreCase(name, "Host")) {
      if (has_host) return ParseResult::kBadRequest;
      has_host = true;
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(),
                       [](char c) { return c >= '0' && c <= '9'; })) {
        return ParseResult::kBadRequest;
      }
      std::uint64_t length = 0;
      for (char c : value) length = length * 10 + static_cast<std::uint64_t>(c - '0');
      if (has_length && length != request.body_length) return ParseResult::kBadRequest;
      has_length = true;
      request.body_length = length;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      return ParseResult::kNotImplemented;
    } else if (EqualsIgnoreCase(name, "Connection")) {
      // A comma-separated list of options.
      std::string_view options = value;
      while (!options.empty()) {
        const std::size_t comma = options.find(',');
        const std::string_view option = TrimSpaces(options.substr(0, comma));
        close = close || EqualsIgnoreCase(option, "close");
        keep_alive = keep_alive || EqualsIgnoreCase(option, "keep-alive");
        options.remove_prefix(comma == std::string_view::npos ? options.size()
                                                              : comma + 1);
      }
    }
  }
  if (!request.http10 && !has_host) return ParseResult::kBadRequest;  // RFC 9112 3.2
  request.keep_alive = !close && (!request.http10 || keep_alive);
  return ParseResult::kOk;
}

void AppendReply(const Request& request, std::string& out) {
  out += kOkHeaders;
  if (!request.keep_alive) {
    out += "Connection: close\r\n";
  } else if (request.http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!request.head) out += kBody;
}

// ---- Connections --------------------------------------------------------------

// Closes as RFC 9112 (9.6) advises: stop sending, then read and drop what the
// client still sends for a moment. Closing with unread bytes in the socket
// makes the kernel answer with a reset, which can destroy the reply in flight.
void LingeringClose(weft::io::TcpStream& stream) {
  stream.ShutdownWrite();
  const weft::Deadline deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char sink[4096];
  for (std::size_t drained = 0; drained < 256 * 1024;) {
    const auto [n, error] = stream.Read(sink, sizeof(sink), deadline);
    if (error || n == 0) return;
    drained += n;
  }
}

// Serves one connection until the client closes it, asks to, or sends
// something the server will not take.
void ServeHttp(weft::io::TcpStream& stream) {
  char buffer[4096];
  std::string pending;          // received, not yet parsed: the start of a request
  std::string replies;          // the replies to the requests of one read
  std::uint64_t body_left = 0;  // body bytes of the last request still to come
  for (;;) {
    const auto [n, read_error] = stream.Read(buffer, sizeof(buffer));
    if (read_error) {
      if (!examples::PeerWentAway(read_error)) {
        std::fprintf(stderr, "%s: read: %s\n", kProgram, read_error.message().c_str());
      }
      return;
    }
    if (n == 0) return;  // the client closed

    // Usually the whole request arrived in one read and is parsed in place;
    // otherwise the new bytes join the partial request kept from before.
    std::string_view input(buffer, n);
    const auto skipped = static_cast<std::size_t>(std::min<std::uint64_t>(body_left, n));
    body_left -= skipped;
    input.remove_prefix(skipped);
    if (!pending.empty()) {
      pending.append(input);
      input = pending;
    }

    bool close = false;
    std::size_t parsed = 0;  // bytes of `input` taken by whole requests
    while (body_left == 0 && parsed < input.size()) {
      std::string_view rest = input.substr(parsed);
      // Empty lines before a request are ignored (RFC 9112 2.2).
      if (rest.front() == '\n' || rest.substr(0, 2) == "\r\n") {
        parsed += rest.front() == '\n' ? 1 : 2;
        continue;
      }
      const std::size_t header_length =
          HeaderBlockLength(rest.substr(0, kMaxHeaderBytes));
      if (header_length == 0) {
        if (rest.size() >= kMaxHeaderBytes) {  // 8 KiB and still no end of headers
          replies += kBadRequest;
          close = true;
        }
        break;  // wait for the rest of the request
      }
      Request request;
      const ParseResult result = ParseRequest(rest.substr(0, header_length), request);
      if (result != ParseResult::kOk) {
        replies += result == ParseResult::kBadRequest ? kBadRequest : kNotImplemented;
        close = true;
        break;
      }
      AppendReply(request, replies);
      parsed += header_length;
      // The body: whatever of it is here is dropped now, the rest as it comes.
      const auto here = static_cast<std::size_t>(
          std::min<std::uint64_t>(request.body_length, input.size() - parsed));
      parsed += here;
      body_left = request.body_length - here;
      if (!request.keep_alive) {
        close = true;
        break;
      }
    }
    if (!close) {
      // Keep the unparsed tail (a partial request) for the next read.
      if (input.data() == pending.data()) {
        pending.erase(0, parsed);
      } else {
        pending.assign(input.substr(parsed));
      }
    }

    if (!replies.empty()) {
      const auto [written, write_error] = stream.WriteAll(replies);
      if (write_error) {
        if (!examples::PeerWentAway(write_error)) {
          std::fprintf(stderr, "%s: write after %zu bytes: %s\n", kProgram, written,
                       write_error.message().c_str());
        }
        return;
      }
      replies.clear();
    }
    if (close) {
      LingeringClose(stream);
      return;
    }
  }
}

// ---- The server -------------------------------------------------------------

class HttpServer {
 public:
  std::error_code Listen(std::uint16_t port) {
    return listener_.Listen("127.0.0.1", port, SOMAXCONN);
  }
  std::uint16_t port() const { return listener_.LocalPort(); }

  void Start() {
    acceptor_ = weft::Fiber([this] { AcceptLoop(); });
  }

  // Stops accepting, then ends every connection; ~Runtime waits for their
  // fibers.
  void Stop() {
    stopping_ = true;
    listener_.Close();  // a waiting Accept() returns operation_canceled
    acceptor_.Join();
    registry_.ShutdownAll();
  }

 private:
  void AcceptLoop() {
    for (;;) {
      auto [stream, error] = listener_.Accept();
      if (error) {
        // Stop() closed the listener (see weft_echo_server).
        if (stopping_ || error == std::errc::operation_canceled ||
            error == weft::io::Error::kNotOpen) {
          return;
        }
        // Out of descriptors and the like: Accept() has backed off already.
        std::fprintf(stderr, "%s: accept: %s\n", kProgram, error.message().c_str());
        continue;
      }
      if (!weft::StartFiberDetached(
              [this, s = std::move(stream)]() mutable { Serve(std::move(s)); })) {
        std::fprintf(stderr, "%s: cannot start a fiber; connection dropped\n", kProgram);
      }
    }
  }

  void Serve(weft::io::TcpStream stream) {
    if (!registry_.Add(stream.fd())) return;
    ServeHttp(stream);
    registry_.Remove(stream.fd());
  }

  weft::io::TcpListener listener_;
  weft::Fiber acceptor_;
  std::atomic<bool> stopping_{false};
  examples::ConnectionRegistry registry_;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("weft_http_hello --port=N --workers=N [--weft_...]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  examples::CheckNoArguments(kProgram, argc, argv);
  examples::CheckFlagRange(kProgram, "port", FLAGS_port, 0, 65535);
  examples::CheckFlagRange(kProgram, "workers", FLAGS_workers, 1, 1024);
  const weft::RuntimeOptions options = examples::RuntimeOptionsOrExit(kProgram, FLAGS_workers);

  const sigset_t signals = examples::BlockTerminationSignals();  // before any thread starts
  examples::RaiseOpenFileLimit(kProgram);

  HttpServer server;  // outlives the runtime, whose destructor waits for its fibers
  weft::Runtime runtime(options);
  if (const std::error_code error =
          server.Listen(static_cast<std::uint16_t>(FLAGS_port))) {
    std::fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d: %s\n", kProgram, FLAGS_port,
                 error.message().c_str());
    return 1;
  }
  std::printf("listening 127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.Start();

  const int signal = examples::WaitForSignal(signals);
  std::fprintf(stderr, "%s: %s, shutting down\n", kProgram, strsignal(signal));
  server.Stop();
  return 0;
}
