// A server program the hook tests start on 127.0.0.1 and stop by pid: a free
// port, a temporary directory, a bounded wait until it accepts connections.
#ifndef WEFT_TEST_HOOK_SERVER_PROCESS_H_
#define WEFT_TEST_HOOK_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test/test_util.h"

extern char** environ;

namespace weft::testing {

// A port nobody listens on now (the kernel's pick for a socket bound to 0).
inline std::uint16_t FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), len);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len);
  close(fd);
  return ntohs(address.sin_port);
}

inline bool Accepts(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

// redis-server on 127.0.0.1:port, no persistence, in a temporary directory;
// stopped (SIGTERM, then reaped) by the destructor.
class RedisServer {
 public:
  RedisServer() : port_(FreeLoopbackPort()) {
    char dir[] = "/tmp/weft_redis_XXXXXX";
    dir_ = mkdtemp(dir);
    const std::string port = std::to_string(port_);
    std::vector<std::string> args = {"redis-server", "--port", port, "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", dir_,
                                     "--maxclients", "4000", "--loglevel", "warning"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      return;
    }
    ready_ = PollUntil([&] { return Accepts(port_); }, "redis-server to accept connections");
  }
  ~RedisServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    const std::string remove = "rm -rf '" + dir_ + "'";
    if (system(remove.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir_.c_str());
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Whether it started and accepts connections.
  bool ready() const { return pid_ > 0 && ready_; }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace weft::testing

#endif  // WEFT_TEST_HOOK_SERVER_PROCESS_H_
