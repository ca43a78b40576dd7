#include "runtime/io/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <utility>

#include "runtime/io/detail/resolver.h"

namespace weft::io {
namespace {

struct EaiText {
  const char* name;
  const char* meaning;  // what it means and what to check
};

EaiText Describe(int code) {
  switch (code) {
    case EAI_NONAME:
      return {"EAI_NONAME",
              "no such host or service; check the spelling, and for a host the name "
              "servers of /etc/resolv.conf and /etc/hosts"};
    case EAI_AGAIN:
      return {"EAI_AGAIN",
              "the name servers did not answer or failed temporarily; try again later"};
    case EAI_FAIL:
      return {"EAI_FAIL", "the name servers failed for good on this name"};
#ifdef EAI_NODATA
    case EAI_NODATA:
      return {"EAI_NODATA", "the host exists but has no address"};
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
      return {"EAI_ADDRFAMILY", "the host has no address of the family asked for"};
#endif
    case EAI_SERVICE:
      return {"EAI_SERVICE",
              "the service is not known for stream sockets; give a port number, or a "
              "name listed in /etc/services"};
    case EAI_FAMILY:
      return {"EAI_FAMILY", "the address family is not supported"};
    case EAI_SOCKTYPE:
      return {"EAI_SOCKTYPE", "the socket type is not supported"};
    case EAI_BADFLAGS:
      return {"EAI_BADFLAGS", "the lookup's flags are invalid"};
    case EAI_MEMORY:
      return {"EAI_MEMORY", "out of memory"};
    case EAI_OVERFLOW:
      return {"EAI_OVERFLOW", "a buffer was too small for the answer"};
    default:
      return {nullptr, "the lookup failed"};
  }
}

class ResolveErrorCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft::resolve"; }
  std::string message(int code) const override {
    const EaiText text = Describe(code);
    return std::string(text.meaning) + " (" +
           (text.name != nullptr ? text.name
                                 : "getaddrinfo error " + std::to_string(code)) +
           ": " + gai_strerror(code) + ")";
  }
};

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

const std::error_category& ResolveCategory() {
  static const ResolveErrorCategory category;
  return category;
}

std::uint16_t Endpoint::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
  }
  return 0;
}

std::string Endpoint::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(storage);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(port());
  }
  if (storage.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(port());
  }
  return "";
}

ResolveResult Resolve(std::string_view host, std::string_view service,
                      Deadline deadline) {
  ResolveResult result;
  std::string node(host);
  if (node.size() >= 2 && node.front() == '[' && node.back() == ']') {
    node = node.substr(1, node.size() - 2);
  }
  const std::string port(service);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const detail::LookupResult found = detail::LookUp(
      node.c_str(), port.empty() ? nullptr : port.c_str(), &hints, deadline);
  if (found.answer == nullptr) {
    result.error = std::make_error_code(std::errc::timed_out);
  } else if (found.answer->code == EAI_SYSTEM) {
    result.error = std::error_code(found.answer->system_errno, std::system_category());
  } else if (found.answer->code != 0) {
    result.error = std::error_code(found.answer->code, ResolveCategory());
  } else if (found.answer->addresses.empty()) {
    result.error = std::error_code(EAI_NONAME, ResolveCategory());
  }
  if (result.error) {
    result.error_message =
        "weft::io::Resolve(" + Quoted(host) + ", " + Quoted(service) + "): " +
        (found.answer == nullptr ? "gave up waiting for the answer at the deadline (the "
                                   "lookup goes on and fills the cache)"
                                 : result.error.message());
    return result;
  }
  const auto& addresses = found.answer->addresses;
  const std::size_t first = found.times_served % addresses.size();
  result.addresses.reserve(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const detail::ResolvedAddress& address = addresses[(first + i) % addresses.size()];
    Endpoint endpoint;
    endpoint.storage = address.address;
    endpoint.length = address.length;
    result.addresses.push_back(endpoint);
  }
  return result;
}

}  // namespace weft::io
