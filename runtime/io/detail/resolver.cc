#include "runtime/io/detail/resolver.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <gnu/lib-names.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <utility>

#include "runtime/detail/blocking_pool.h"
#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/sync/fiber_latch.h"

namespace weft::io::detail {
namespace {

using weft::detail::BlockingPool;
using weft::detail::BlockingTask;
using weft::detail::LockGuard;
using weft::detail::Mutex;
using SteadyTime = std::chrono::steady_clock::time_point;

// More cached answers than this and the ones closest to expiry go first.
constexpr std::size_t kMaxCachedAnswers = 4096;

// ---- The C library's functions ----------------------------------------------

using GetAddrInfoFunction = int (*)(const char*, const char*, const addrinfo*,
                                    addrinfo**);
using FreeAddrInfoFunction = void (*)(addrinfo*);

struct CLibrary {
  GetAddrInfoFunction getaddrinfo = &::getaddrinfo;
  FreeAddrInfoFunction freeaddrinfo = &::freeaddrinfo;
};

const CLibrary& C() {
  static const CLibrary library = [] {
    CLibrary found;
    // RTLD_NOLOAD: the C library is loaded already; this only takes a handle
    // (never closed: the C library stays for the life of the process anyway).
    if (void* libc = dlopen(LIBC_SO, RTLD_NOW | RTLD_NOLOAD)) {
      if (void* get = dlsym(libc, "getaddrinfo")) {
        found.getaddrinfo = reinterpret_cast<GetAddrInfoFunction>(get);
      }
      if (void* free = dlsym(libc, "freeaddrinfo")) {
        found.freeaddrinfo = reinterpret_cast<FreeAddrInfoFunction>(free);
      }
    }
    return found;
  }();
  return library;
}

// ---- Lookups ------------------------------------------------------------------

struct LookupKey {
  bool has_node = false;
  bool has_service = false;
  std::string node;
  std::string service;
  int flags = 0;
  int family = 0;
  int socktype = 0;
  int protocol = 0;

  bool operator==(const LookupKey& other) const {
    return has_node == other.has_node && has_service == other.has_service &&
           node == other.node && service == other.service && flags == other.flags &&
           family == other.family && socktype == other.socktype &&
           protocol == other.protocol;
  }

  addrinfo Hints() const {
    addrinfo hints{};
    hints.ai_flags = flags;
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_protocol = protocol;
    return hints;
  }
};

struct LookupKeyHash {
  std::size_t operator()(const LookupKey& key) const {
    std::size_t h = std::hash<std::string>()(key.node);
    auto mix = [&h](std::size_t v) {
      h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    };
    mix(std::hash<std::string>()(key.service));
    mix(static_cast<std::size_t>(key.has_node) | static_cast<std::size_t>(key.has_service)
                                                     << 1);
    mix(static_cast<std::size_t>(key.flags));
    mix(static_cast<std::size_t>(key.family));
    mix(static_cast<std::size_t>(key.socktype));
    mix(static_cast<std::size_t>(key.protocol));
    return h;
  }
};

LookupKey MakeKey(const char* node, const char* service, const addrinfo* hints) {
  LookupKey key;
  key.has_node = node != nullptr;
  key.has_service = service != nullptr;
  if (node != nullptr) key.node = node;
  if (service != nullptr) key.service = service;
  if (hints != nullptr) {
    key.flags = hints->ai_flags;
    key.family = hints->ai_family;
    key.socktype = hints->ai_socktype;
    key.protocol = hints->ai_protocol;
  } else {
    key.flags = AI_V4MAPPED | AI_ADDRCONFIG;  // what getaddrinfo takes null hints for
  }
  return key;
}

bool AllDigits(const char* text) {
  if (*text == '\0') return false;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9') return false;
  }
  return true;
}

// Whether getaddrinfo answers this from the arguments alone: no name service,
// no /etc/hosts or /etc/services.
bool NeedsNoQuery(const char* node, const char* service, int flags) {
  bool numeric_node = node == nullptr || (flags & AI_NUMERICHOST) != 0;
  if (!numeric_node) {
    unsigned char bytes[sizeof(in6_addr)];
    std::string text(node);
    const std::size_t scope = text.find('%');  // fe80::1%2, fe80::1%eth0
    if (scope != std::string::npos) text.resize(scope);
    numeric_node = inet_pton(AF_INET, text.c_str(), bytes) == 1 ||
                   inet_pton(AF_INET6, text.c_str(), bytes) == 1;
  }
  const bool numeric_service =
      service == nullptr || (flags & AI_NUMERICSERV) != 0 || AllDigits(service);
  return numeric_node && numeric_service;
}

// Runs getaddrinfo (or the test's function) and copies what it answered.
Answer Query(const LookupKey& key, const LookupFunction& lookup) {
  const addrinfo hints = key.Hints();
  const char* node = key.has_node ? key.node.c_str() : nullptr;
  const char* service = key.has_service ? key.service.c_str() : nullptr;
  addrinfo* list = nullptr;
  errno = 0;
  Answer answer;
  answer.code = lookup ? lookup(node, service, &hints, &list)
                       : C().getaddrinfo(node, service, &hints, &list);
  if (answer.code == EAI_SYSTEM) answer.system_errno = errno;
  if (answer.code != 0) return answer;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addr == nullptr || ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    ResolvedAddress address;
    address.family = ai->ai_family;
    address.socktype = ai->ai_socktype;
    address.protocol = ai->ai_protocol;
    address.length = ai->ai_addrlen;
    std::memcpy(&address.address, ai->ai_addr, ai->ai_addrlen);
    answer.addresses.push_back(address);
  }
  if (list != nullptr && list->ai_canonname != nullptr) {
    answer.has_canonical_name = true;
    answer.canonical_name = list->ai_canonname;
  }
  if (list != nullptr) C().freeaddrinfo(list);
  return answer;
}

// One query in flight, shared by every lookup of its key that came meanwhile.
struct Flight {
  weft::FiberLatch done{1};
  std::shared_ptr<const Answer> answer;  // written before `done` counts down
};

struct CachedAnswer {
  std::shared_ptr<const Answer> answer;
  SteadyTime expires;
  std::uint64_t times_served = 1;  // the query gave it out once
};

class Resolver {
 public:
  LookupResult LookUp(LookupKey key, Deadline deadline) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      LockGuard<Mutex> lock(mutex_);
      const auto cached = cache_.find(key);
      if (cached != cache_.end()) {
        if (cached->second.expires > std::chrono::steady_clock::now()) {
          return {cached->second.answer, cached->second.times_served++};
        }
        cache_.erase(cached);
      }
      std::shared_ptr<Flight>& slot = flights_[key];
      if (slot == nullptr) {
        slot = std::make_shared<Flight>();
        leader = true;
      }
      flight = slot;
      ++waiting_;
    }
    if (leader) Start(std::move(key), flight);
    const bool answered = flight->done.WaitUntil(deadline.TimePoint());
    {
      LockGuard<Mutex> lock(mutex_);
      --waiting_;
    }
    if (!answered) return {};
    return {flight->answer, 0};
  }

  std::size_t Waiting() {
    LockGuard<Mutex> lock(mutex_);
    return waiting_;
  }

  void SetLookupFunction(LookupFunction lookup) {
    LockGuard<Mutex> lock(mutex_);
    lookup_ = std::move(lookup);
  }

  void ClearCache() {
    LockGuard<Mutex> lock(mutex_);
    cache_.clear();
  }

 private:
  struct QueryTask : BlockingTask {
    Resolver* resolver = nullptr;
    LookupKey key;
    std::shared_ptr<Flight> flight;
    LookupFunction lookup;
  };

  // Runs the query on the pool; on the caller when there is no pool, or when
  // the caller is a pool thread already (waiting there for a queued query
  // could wait forever, every pool thread being such a caller).
  void Start(LookupKey key, std::shared_ptr<Flight> flight) {
    auto task = std::make_unique<QueryTask>();
    task->run = &Resolver::RunTask;
    task->resolver = this;
    task->key = std::move(key);
    task->flight = std::move(flight);
    {
      LockGuard<Mutex> lock(mutex_);
      task->lookup = lookup_;
    }
    if (!BlockingPool::OnPoolThread() && BlockingPool::Global().Submit(task.get())) {
      task.release();  // RunTask owns it now
    } else {
      RunTask(task.release());
    }
  }

  static void RunTask(BlockingTask* base) {
    std::unique_ptr<QueryTask> task(static_cast<QueryTask*>(base));
    auto answer = std::make_shared<const Answer>(Query(task->key, task->lookup));
    task->resolver->Finish(task->key, answer, *task->flight);
  }

  void Finish(const LookupKey& key, const std::shared_ptr<const Answer>& answer,
              Flight& flight) {
    flight.answer = answer;
    const auto ttl = std::chrono::milliseconds(
        weft::detail::State().resolve_cache_ttl_ms.load(std::memory_order_relaxed));
    {
      // The answer goes into the cache as the flight leaves, in one step, so
      // that a lookup finds one or the other and never starts a second query.
      LockGuard<Mutex> lock(mutex_);
      if (answer->code == 0 && ttl.count() > 0) {
        if (cache_.size() >= kMaxCachedAnswers) MakeRoom();
        cache_[key] = {answer, std::chrono::steady_clock::now() + ttl, 1};
      }
      flights_.erase(key);
    }
    flight.done.CountDown();
  }

  // Drops the expired answers, and if that frees nothing, the eighth of the
  // cache closest to expiry.
  void MakeRoom() WEFT_REQUIRES(mutex_) {
    const SteadyTime now = std::chrono::steady_clock::now();
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = it->second.expires <= now ? cache_.erase(it) : std::next(it);
    }
    if (cache_.size() < kMaxCachedAnswers) return;
    std::vector<SteadyTime> expiries;
    expiries.reserve(cache_.size());
    for (const auto& entry : cache_) expiries.push_back(entry.second.expires);
    const auto cut = expiries.begin() + static_cast<std::ptrdiff_t>(expiries.size() / 8);
    std::nth_element(expiries.begin(), cut, expiries.end());
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = it->second.expires <= *cut ? cache_.erase(it) : std::next(it);
    }
  }

  Mutex mutex_;
  std::unordered_map<LookupKey, CachedAnswer, LookupKeyHash> cache_
      WEFT_GUARDED_BY(mutex_);
  std::unordered_map<LookupKey, std::shared_ptr<Flight>, LookupKeyHash> flights_
      WEFT_GUARDED_BY(mutex_);
  LookupFunction lookup_ WEFT_GUARDED_BY(mutex_);
  std::size_t waiting_ WEFT_GUARDED_BY(mutex_) = 0;
};

// Never destroyed: a query may still finish on a pool thread at exit.
Resolver& TheResolver() {
  static Resolver* const resolver = new Resolver();
  return *resolver;
}

// A list freeaddrinfo(3) of glibc can free: each entry one malloc'd block with
// its address after it, the canonical name (first entry only) malloc'd apart.
addrinfo* BuildList(const Answer& answer, bool want_canonical_name) {
  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  for (const ResolvedAddress& address : answer.addresses) {
    auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + address.length));
    if (ai == nullptr) {
      SystemFreeAddrInfo(head);
      return nullptr;
    }
    ai->ai_family = address.family;
    ai->ai_socktype = address.socktype;
    ai->ai_protocol = address.protocol;
    ai->ai_addrlen = address.length;
    ai->ai_addr = reinterpret_cast<sockaddr*>(ai + 1);
    std::memcpy(ai->ai_addr, &address.address, address.length);
    *tail = ai;
    tail = &ai->ai_next;
  }
  if (head != nullptr && want_canonical_name && answer.has_canonical_name) {
    head->ai_canonname = strdup(answer.canonical_name.c_str());
    if (head->ai_canonname == nullptr) {
      SystemFreeAddrInfo(head);
      return nullptr;
    }
  }
  return head;
}

}  // namespace

int SystemGetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                      addrinfo** result) {
  return C().getaddrinfo(node, service, hints, result);
}

void SystemFreeAddrInfo(addrinfo* list) {
  if (list != nullptr) C().freeaddrinfo(list);
}

LookupResult LookUp(const char* node, const char* service, const addrinfo* hints,
                    Deadline deadline) {
  LookupKey key = MakeKey(node, service, hints);
  if (NeedsNoQuery(node, service, key.flags)) {
    return {std::make_shared<const Answer>(Query(key, nullptr)), 0};
  }
  return TheResolver().LookUp(std::move(key), deadline);
}

int GetAddrInfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** result, Deadline deadline) {
  if (result == nullptr) {
    errno = EINVAL;
    return EAI_SYSTEM;
  }
  const int flags = hints != nullptr ? hints->ai_flags : AI_V4MAPPED | AI_ADDRCONFIG;
  if (NeedsNoQuery(node, service, flags)) {
    return SystemGetAddrInfo(node, service, hints, result);
  }
  const LookupResult found = LookUp(node, service, hints, deadline);
  if (found.answer == nullptr) {
    errno = ETIMEDOUT;
    return EAI_AGAIN;
  }
  const Answer& answer = *found.answer;
  if (answer.code != 0) {
    if (answer.code == EAI_SYSTEM) errno = answer.system_errno;
    return answer.code;
  }
  if (answer.addresses.empty()) return EAI_NONAME;
  addrinfo* list = BuildList(answer, (flags & AI_CANONNAME) != 0);
  if (list == nullptr) return EAI_MEMORY;
  *result = list;
  return 0;
}

void SetLookupFunctionForTesting(LookupFunction lookup) {
  TheResolver().SetLookupFunction(std::move(lookup));
}

void ClearCacheForTesting() { TheResolver().ClearCache(); }

std::size_t WaitingLookupsForTesting() { return TheResolver().Waiting(); }

}  // namespace weft::io::detail
