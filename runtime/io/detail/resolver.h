// The resolver behind weft::io::Resolve (runtime/io/resolve.h) and the
// getaddrinfo(3) of weft's syscall hooks: getaddrinfo on the blocking pool,
// never on a fiber worker, one query shared by concurrent identical lookups
// (single flight), a cache of successful answers for
// RuntimeOptions::resolve_cache_ttl_ms, and a deadline on the caller's wait.
//
// A lookup is identified by its node, service and the hints' flags, family,
// socket type and protocol; lookups that differ in any of them are separate
// queries and separate cache entries. Lookups whose answer needs no query (a
// numeric address or no node, and a numeric service or none, or
// AI_NUMERICHOST) are answered at once on the calling thread, uncached.
//
// The C library's getaddrinfo is called through a pointer looked up once in
// the C library itself: dlsym() on the handle of libc.so.6 (dlopen with
// RTLD_NOLOAD), which finds the C library's own definition whatever else
// defines the name. RTLD_NEXT would not do: when weft is linked into the
// program and a library that interposes getaddrinfo is preloaded, the "next"
// definition after the program is the interposer, which calls back here. Only
// where libc.so.6 cannot be opened (a statically linked program) is it
// ::getaddrinfo, the name as the program's link resolved it.
//
// Thread-safe: any fiber or thread may look up at any time. All functions may
// be called whether or not the runtime runs: without it (or while it
// terminates) there is no pool, and a query runs on the calling thread, which
// then cannot give up at its deadline. So does a query started on a pool
// thread (inside RunBlocking), which is off the workers already.
#ifndef WEFT_RUNTIME_IO_DETAIL_RESOLVER_H_
#define WEFT_RUNTIME_IO_DETAIL_RESOLVER_H_

#include <netdb.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/deadline.h"

namespace weft::io::detail {

// getaddrinfo(3) through the resolver: runs off the fiber workers, shares one
// query with concurrent identical lookups (same node, service and hints), serves
// from the TTL cache, gives up waiting at the deadline (returns EAI_AGAIN, errno
// ETIMEDOUT). On success *result is a fresh list that the C library's
// freeaddrinfo(3) can free (each addrinfo malloc'd together with its ai_addr, as
// glibc does; ai_canonname malloc'd separately). Returns getaddrinfo's code.
//
// `hints` may be null (as for getaddrinfo: any family, socket type and
// protocol, AI_V4MAPPED | AI_ADDRCONFIG). On failure *result is not written;
// EAI_SYSTEM comes with the errno of the failed query. A query still running
// when the caller gives up goes on, and its answer fills the cache. The list
// is in the order the C library gave it (RFC 6724, /etc/gai.conf).
int GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** result, Deadline deadline);

// One address of an answer.
struct ResolvedAddress {
  int family = 0;
  int socktype = 0;
  int protocol = 0;
  socklen_t length = 0;
  sockaddr_storage address{};
};

// What a query answered: getaddrinfo's code, and on success its addresses.
struct Answer {
  int code = 0;
  int system_errno = 0;  // with EAI_SYSTEM: the errno the query failed with
  std::vector<ResolvedAddress> addresses;
  bool has_canonical_name = false;  // AI_CANONNAME asked and given
  std::string canonical_name;
};

struct LookupResult {
  // Null only when the deadline passed first.
  std::shared_ptr<const Answer> answer;
  // How many times this answer was given out before this call: 0 to the
  // lookups its query answered, then 1, 2, ... as the cache serves it; for
  // callers that rotate the addresses.
  std::uint64_t times_served = 0;
};

// The lookup behind GetAddrInfo, with the answer as it is cached. `hints` as
// for GetAddrInfo.
LookupResult LookUp(const char* node, const char* service, const addrinfo* hints,
                    Deadline deadline);

// The C library's getaddrinfo and freeaddrinfo (see the top for how they are
// found).
int SystemGetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                      addrinfo** result);
void SystemFreeAddrInfo(addrinfo* list);

// Test seam: the function queries call instead of SystemGetAddrInfo (called
// on a pool thread, with the lookup's node, service and hints); an empty
// function restores SystemGetAddrInfo. A list it returns is freed with
// SystemFreeAddrInfo, so it must come from SystemGetAddrInfo or be built the
// way GetAddrInfo builds its lists. Queries already running keep the function
// they started with.
using LookupFunction = std::function<int(const char* node, const char* service,
                                         const addrinfo* hints, addrinfo** result)>;
void SetLookupFunctionForTesting(LookupFunction lookup);

// Test seam: forgets every cached answer (queries in flight are unaffected).
void ClearCacheForTesting();

// Test seam: lookups waiting for a query now (its starter included), so that
// a test can tell when every lookup it started has joined a query.
std::size_t WaitingLookupsForTesting();

}  // namespace weft::io::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_RESOLVER_H_
