// weft::io::Resolve: host names to addresses, without blocking a worker.
//
//   auto [addresses, error, error_message] =
//       weft::io::Resolve("db.internal", "5432", std::chrono::seconds(2));
//   if (error) { LOG(ERROR) << error_message; return; }
//   weft::io::TcpStream stream;
//   if (auto error = stream.Connect(addresses, std::chrono::seconds(1))) { ... }
//
// getaddrinfo(3) blocks its thread for as long as the name servers take
// (seconds when one does not answer), so Resolve runs it on the blocking pool
// (runtime/blocking.h) and parks only the calling fiber. On top of that:
// - cache: a successful answer is kept for RuntimeOptions::resolve_cache_ttl_ms
//   (--weft_resolve_cache_ttl_ms, 5 s by default; 0 turns the cache off) and
//   lookups of the same host and service within that time are answered from it
//   at once. The TTLs of DNS records are not known to getaddrinfo, so this is a
//   fixed, short time. Failures are not cached.
// - single flight: lookups of the same host and service made while a query for
//   them runs wait for that query instead of starting another.
// - deadline: the caller stops waiting when it passes (std::errc::timed_out);
//   the query itself goes on, and its answer still fills the cache, so a retry
//   may find it there.
// - round robin: each answer served from the cache starts one address further
//   along the list than the previous one, so that callers that take the first
//   address spread over all of them.
// - literals: an IPv4 or IPv6 literal ("10.0.0.1", "::1", "[::1]") with a
//   numeric service is answered on the spot, without a query or the pool.
//
// Works from fibers and plain threads. With no runtime running there is no
// pool: the query runs on the calling thread, which cannot give up at the
// deadline then (a lookup already running for the same name still can).
// Thread-safe.
#ifndef WEFT_RUNTIME_IO_RESOLVE_H_
#define WEFT_RUNTIME_IO_RESOLVE_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "runtime/deadline.h"

namespace weft::io {

// One address a name resolved to: a sockaddr_in or sockaddr_in6, port
// included, ready for connect(2) or weft::io::Connect.
struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }  // AF_INET or AF_INET6
  std::uint16_t port() const;
  // "127.0.0.1:80", "[::1]:80".
  std::string ToString() const;
};

// The errors of getaddrinfo, in the category named "weft::resolve". The value
// is getaddrinfo's EAI_* code (negative on glibc), e.g.
//   error == std::error_code(EAI_NONAME, weft::io::ResolveCategory())
// and message() says what it means and what to check, with gai_strerror's
// text. (EAI_SYSTEM is reported as the system error behind it, in
// std::system_category, and a deadline that passed as std::errc::timed_out.)
const std::error_category& ResolveCategory();

struct ResolveResult {
  // Every address of the host for stream sockets (TCP), IPv4 and IPv6 alike;
  // empty on failure.
  std::vector<Endpoint> addresses;
  std::error_code error;
  // On failure, a line naming the lookup and why it failed, e.g.
  //   weft::io::Resolve("something.invalid", "80"): no such host or service
  //   (EAI_NONAME: Name or service not known); ...
  // Empty on success.
  std::string error_message;
};

// The addresses of `host` (a name or an IP literal, IPv6 with or without
// brackets) for `service` (a port number like "443" or a name from
// /etc/services like "https"; empty: port 0), for stream sockets. See the top
// for the cache, the sharing of queries, the deadline and the order of the
// addresses. A deadline already passed still gets an answer that is cached or
// needs no query.
ResolveResult Resolve(std::string_view host, std::string_view service,
                      Deadline deadline = {});

}  // namespace weft::io

#endif  // WEFT_RUNTIME_IO_RESOLVE_H_
