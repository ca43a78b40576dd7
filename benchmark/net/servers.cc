#include "benchmark/net/servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

namespace weft::bench::net {

namespace {

using Clock = std::chrono::steady_clock;

constexpr char kHelloBody[] = "Hello, World!";
constexpr char kListeningPrefix[] = "listening 127.0.0.1:";

std::string SystemError(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

int MillisecondsUntil(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::min<std::int64_t>(
      std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1'000'000));
}

// The port of a `listening 127.0.0.1:<port>` line, or 0.
int ParseListeningLine(const std::string& line) {
  const std::size_t prefix = sizeof(kListeningPrefix) - 1;
  if (line.compare(0, prefix, kListeningPrefix) != 0 || line.size() == prefix ||
      line.size() > prefix + 5) {
    return 0;
  }
  int port = 0;
  for (std::size_t i = prefix; i < line.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return 0;
    port = port * 10 + (line[i] - '0');
  }
  return port <= 65535 ? port : 0;
}

class ListeningServer : public Server {
 public:
  ListeningServer(std::unique_ptr<Subprocess> process, int port)
      : process_(std::move(process)), port_(port) {}
  int port() const override { return port_; }
  pid_t pid() const override { return process_->pid(); }
  std::string Stop() override { return process_->Stop(); }

 private:
  std::unique_ptr<Subprocess> process_;
  int port_;
};

// A port of 127.0.0.1 that nothing listens on now: the kernel's pick for a
// socket that is then closed. (Another process could take it before nginx
// binds it; then nginx fails to start, and says so.)
int FreePort(std::string* error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = SystemError("socket");
    return 0;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  } else {
    *error = SystemError("bind to 127.0.0.1:0");
  }
  close(fd);
  return port;
}

std::string NginxConfig(const std::string& directory, int workers, int port) {
  std::ostringstream config;
  config << "# Written by weft_showcase for W10; removed when the server stops.\n"
         << "daemon off;\n"
         << "master_process on;\n"
         << "worker_processes " << workers << ";\n"
         << "pid " << directory << "/nginx.pid;\n"
         << "error_log " << directory << "/error.log warn;\n"
         << "events {\n"
         << "  worker_connections 4096;\n"
         << "}\n"
         << "http {\n"
         << "  access_log off;\n"
         << "  client_body_temp_path " << directory << "/client_body;\n"
         << "  proxy_temp_path " << directory << "/proxy;\n"
         << "  fastcgi_temp_path " << directory << "/fastcgi;\n"
         << "  uwsgi_temp_path " << directory << "/uwsgi;\n"
         << "  scgi_temp_path " << directory
         << "/scgi;\n"
         // The default closes a keep-alive connection after 1000 requests; the
         // other servers never do.
         << "  keepalive_requests 1000000000;\n"
         << "  server {\n"
         // reuseport: a listening socket per worker, so that the kernel spreads
         // the connections evenly over the workers (as the epoll peer does).
         << "    listen 127.0.0.1:" << port << " reuseport;\n"
         << "    default_type text/plain;\n"
         << "    location / {\n"
         << "      return 200 \"" << kHelloBody << "\";\n"
         << "    }\n"
         << "  }\n"
         << "}\n";
  return config.str();
}

// The last `lines` lines of the file at `path`, joined with " | ".
std::string LastLines(const std::string& path, std::size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  std::string joined;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    joined += (joined.empty() ? "" : " | ") + all[i];
  }
  return joined;
}

// A server process that runs in a temporary directory of its own on a port
// chosen for it: Stop() ends the process and removes the directory.
class ServerInDirectory : public Server {
 public:
  ServerInDirectory(std::string directory, int port)
      : directory_(std::move(directory)), port_(port) {}
  ~ServerInDirectory() override { Stop(); }

  int port() const override { return port_; }
  pid_t pid() const override { return process_ ? process_->pid() : -1; }

  std::string Stop() override {
    std::string outcome;
    if (process_) outcome = process_->Stop();
    process_.reset();
    if (!directory_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
      directory_.clear();
    }
    return outcome;
  }

 protected:
  std::string directory_;
  int port_;
  std::unique_ptr<Subprocess> process_;
};

class NginxServer : public ServerInDirectory {
 public:
  using ServerInDirectory::ServerInDirectory;

  // Starts nginx and waits until it answers. Returns "" or what went wrong.
  std::string Start(const std::string& nginx, int workers) {
    const std::string config_path = directory_ + "/nginx.conf";
    {
      std::ofstream config(config_path);
      config << NginxConfig(directory_, workers, port_);
      if (!config) return "cannot write " + config_path;
    }
    const int watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watch < 0) return SystemError("inotify_init1");
    inotify_add_watch(watch, directory_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO);
    std::string error;
    // -e: the error log from the start (before the configuration is read, nginx
    // would open the one it was built with, under /var/log).
    process_ = Subprocess::Start({{nginx, "-p", directory_ + "/", "-c", config_path, "-e",
                                   directory_ + "/error.log"}},
                                 &error);
    if (!process_) {
      close(watch);
      return error;
    }
    // nginx writes its pid file after it has bound its listening sockets.
    const Clock::time_point deadline = Clock::now() + kStartTimeout;
    const std::string pid_file = directory_ + "/nginx.pid";
    struct stat info {};
    while (stat(pid_file.c_str(), &info) != 0) {
      pollfd ready[2] = {{watch, POLLIN, 0}, {process_->exit_fd(), POLLIN, 0}};
      const int timeout = MillisecondsUntil(deadline);
      const int n = poll(ready, 2, timeout);
      if (n == 0 && timeout == 0) {
        error = "nginx wrote no pid file within " +
                std::to_string(kStartTimeout.count()) + " s";
        break;
      }
      if (n > 0 && (ready[1].revents & POLLIN) != 0) {
        process_->Wait(Clock::now() + std::chrono::seconds(1));
        error = "nginx " + process_->DescribeEnd();
        break;
      }
      char events[4096];
      while (read(watch, events, sizeof(events)) > 0) {
      }
    }
    close(watch);
    if (error.empty()) {
      error = CheckHelloResponse(
          port_,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    }
    if (!error.empty()) {
      const std::string log = LastLines(directory_ + "/error.log", 3);
      return error + (log.empty() ? "" : " (error.log: " + log + ")");
    }
    return "";
  }
};

// A fresh directory under $TMPDIR (or /tmp) named <prefix>-XXXXXX; "" and
// *error if it cannot be made.
std::string TemporaryDirectory(const std::string& prefix, std::string* error) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" +
                        prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    *error = SystemError("mkdtemp(" + pattern + ")");
    return "";
  }
  return pattern;
}

// Sends PING to 127.0.0.1:port and waits for +PONG until `deadline`. Returns
// "" or what went wrong (a refused connection among others: the server may not
// be listening yet).
std::string PingRedis(int port, Clock::time_point deadline) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return SystemError("socket");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons(static_cast<std::uint16_t>(port));
  auto await = [&](short events) {
    pollfd ready{fd, events, 0};
    return poll(&ready, 1, MillisecondsUntil(deadline)) == 1;
  };
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
    if (errno != EINPROGRESS) return SystemError("connect");
    if (!await(POLLOUT)) return "connect timed out";
    int failure = 0;
    socklen_t length = sizeof(failure);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length);
    if (failure != 0) {
      errno = failure;
      return SystemError("connect");
    }
  }
  constexpr char kPing[] = "PING\r\n";
  if (send(fd, kPing, sizeof(kPing) - 1, MSG_NOSIGNAL) != sizeof(kPing) - 1)
    return SystemError("send PING");
  std::string answer;
  while (answer.find("\r\n") == std::string::npos) {
    if (!await(POLLIN)) return "no answer to PING";
    char buffer[64];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) return "closed the connection before answering PING";
    if (n < 0 && errno != EAGAIN && errno != EINTR) return SystemError("recv");
    if (n > 0) answer.append(buffer, static_cast<std::size_t>(n));
  }
  if (answer != "+PONG\r\n") return "answered PING with \"" + answer.substr(0, 40) + "\"";
  return "";
}

class RedisServer : public ServerInDirectory {
 public:
  using ServerInDirectory::ServerInDirectory;

  // Starts redis-server and waits until it answers PING. Returns "" or what
  // went wrong.
  std::string Start(const std::string& redis_server) {
    const std::string log = directory_ + "/redis.log";
    std::string error;
    process_ = Subprocess::Start(
        {{redis_server, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save",
          "", "--appendonly", "no", "--daemonize", "no", "--dir", directory_, "--logfile",
          log, "--maxclients", "4000"}},
        &error);
    if (!process_) return error;
    const Clock::time_point deadline = Clock::now() + kStartTimeout;
    for (;;) {
      const std::string refused =
          PingRedis(port_, std::min(deadline, Clock::now() + std::chrono::seconds(1)));
      if (refused.empty()) return "";
      pollfd ended{process_->exit_fd(), POLLIN, 0};
      if (poll(&ended, 1, 10) == 1) {
        process_->Wait(Clock::now() + std::chrono::seconds(1));
        error = "redis-server " + process_->DescribeEnd();
        break;
      }
      if (Clock::now() >= deadline) {
        error = "redis-server did not answer PING within " +
                std::to_string(kStartTimeout.count()) + " s (" + refused + ")";
        break;
      }
    }
    const std::string last = LastLines(log, 3);
    return error + (last.empty() ? "" : " (redis.log: " + last + ")");
  }
};

}  // namespace

std::unique_ptr<Server> StartListeningServer(const Subprocess::Command& command,
                                             std::string* error) {
  std::unique_ptr<Subprocess> process = Subprocess::Start(command, error);
  if (!process) return nullptr;
  std::string line;
  if (!process->ReadLine(Clock::now() + kStartTimeout, &line, error)) return nullptr;
  const int port = ParseListeningLine(line);
  if (port == 0) {
    *error = command.argv[0] + " printed \"" + line.substr(0, 80) +
             "\", not \"listening 127.0.0.1:<port>\"";
    return nullptr;
  }
  return std::make_unique<ListeningServer>(std::move(process), port);
}

std::unique_ptr<Server> StartNginx(const std::string& nginx, int workers,
                                   std::string* error) {
  const std::string directory = TemporaryDirectory("weft-nginx", error);
  if (directory.empty()) return nullptr;
  const int port = FreePort(error);
  auto server = std::make_unique<NginxServer>(directory, port);
  if (port == 0) return nullptr;
  *error = server->Start(nginx, workers);
  if (!error->empty()) return nullptr;
  return server;
}

std::unique_ptr<Server> StartRedis(const std::string& redis_server, std::string* error) {
  const std::string directory = TemporaryDirectory("weft-redis", error);
  if (directory.empty()) return nullptr;
  const int port = FreePort(error);
  auto server = std::make_unique<RedisServer>(directory, port);
  if (port == 0) return nullptr;
  *error = server->Start(redis_server);
  if (!error->empty()) return nullptr;
  return server;
}

std::string CheckHelloResponse(int port, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return SystemError("socket");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  server.sin_port = htons(static_cast<std::uint16_t>(port));
  const std::string where = "127.0.0.1:" + std::to_string(port);
  auto await = [&](short events) {
    pollfd ready{fd, events, 0};
    return poll(&ready, 1, MillisecondsUntil(deadline)) == 1;
  };
  if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) != 0) {
    if (errno != EINPROGRESS) return SystemError("connect to " + where);
    if (!await(POLLOUT)) return "connect to " + where + " timed out";
    int failure = 0;
    socklen_t length = sizeof(failure);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length);
    if (failure != 0) {
      errno = failure;
      return SystemError("connect to " + where);
    }
  }
  const std::string request = "GET / HTTP/1.1\r\nHost: " + where + "\r\n\r\n";
  std::size_t written = 0;
  while (written < request.size()) {
    if (!await(POLLOUT)) return "sending a request to " + where + " timed out";
    const ssize_t n =
        send(fd, request.data() + written, request.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return SystemError("send to " + where);
    if (n > 0) written += static_cast<std::size_t>(n);
  }
  // Read the header, then as many body bytes as Content-Length says.
  std::string response;
  std::size_t header_end = std::string::npos;
  std::size_t body_length = 0;
  for (;;) {
    if (header_end == std::string::npos) {
      header_end = response.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string header = response.substr(0, header_end);
        for (char& c : header)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (header.compare(0, 12, "http/1.1 200") != 0) {
          return where + " answered \"" + response.substr(0, response.find('\r')) +
                 "\", not HTTP/1.1 200";
        }
        const auto field = header.find("\r\ncontent-length:");
        if (field == std::string::npos) return where + " sent no Content-Length";
        body_length = std::strtoul(header.c_str() + field + 17, nullptr, 10);
      }
    }
    if (header_end != std::string::npos &&
        response.size() >= header_end + 4 + body_length) {
      break;
    }
    if (!await(POLLIN)) return "reading the answer of " + where + " timed out";
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) return where + " closed the connection before it answered in full";
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return SystemError("recv from " + where);
    if (n > 0) response.append(buffer, static_cast<std::size_t>(n));
  }
  const std::string body = response.substr(header_end + 4, body_length);
  if (body != kHelloBody || response.size() != header_end + 4 + body_length) {
    return where + " answered with the body \"" + body.substr(0, 40) + "\", not \"" +
           kHelloBody + "\"";
  }
  return "";
}

}  // namespace weft::bench::net
