// weft_epoll_echo: the hand-written limit of the echo workload W11
// (docs/benchmarks.md): what a server that owns its event loop outright gets
// from the kernel, with nothing between the loop and the system calls.
//
// `--threads` threads (one per CPU by default), each with its own epoll
// instance and its own listening socket on the same port (SO_REUSEPORT: the
// kernel spreads new connections across the threads, and a connection stays
// on the thread that accepted it). The loop is level-triggered: one
// epoll_wait per batch of ready connections, then one read and one write per
// message. Edge-triggered would need a read that fails with EAGAIN after every
// message to re-arm, a system call more per message; level-triggered reports
// a connection again on its own if a read left bytes behind. Reads go into the
// thread's one 1 KiB buffer (every echo server of the workloads reads into
// 1 KiB); only a write the socket cannot take whole keeps its remainder with
// the connection, which then waits for EPOLLOUT and reads nothing until the
// remainder is out.
//
//   weft_epoll_echo [--port=0] [--threads=<CPUs>]
//
// Binds 127.0.0.1 only (port 0: the kernel picks one), prints exactly one line,
// `listening 127.0.0.1:<port>`, once every thread accepts connections, and
// exits with status 0 on SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <gflags/gflags.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

DEFINE_int32(port, 0, "Port on 127.0.0.1 to listen on; 0 lets the kernel pick one");
DEFINE_int32(threads, 0, "Threads, each with its own epoll loop; 0: one per CPU");

namespace {

constexpr std::size_t kBufferBytes = 1024;
constexpr int kEventsPerWait = 256;
constexpr int kBacklog = 4096;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "weft_epoll_echo: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// A listening socket on 127.0.0.1:port that other threads may bind too.
int ListenReusePort(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  const int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
    Fail("setsockopt(SO_REUSEPORT)");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) Fail("bind");
  if (listen(fd, kBacklog) != 0) Fail("listen");
  return fd;
}

int LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    Fail("getsockname");
  return ntohs(address.sin_port);
}

// One thread's event loop. `stop` is an eventfd that every loop watches.
class Loop {
 public:
  Loop(int listener, int stop) : listener_(listener), stop_(stop) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) Fail("epoll_create1");
    Watch(listener_, EPOLLIN, EPOLL_CTL_ADD);
    Watch(stop_, EPOLLIN, EPOLL_CTL_ADD);
  }

  void Run() {
    epoll_event events[kEventsPerWait];
    for (;;) {
      const int ready = epoll_wait(epoll_, events, kEventsPerWait, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        Fail("epoll_wait");
      }
      for (int i = 0; i < ready; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_) return CloseAll();
        if (fd == listener_) {
          AcceptAll();
        } else if (events[i].events & EPOLLOUT) {
          Flush(fd);
        } else {
          Echo(fd);
        }
      }
    }
  }

 private:
  void Watch(int fd, uint32_t events, int operation) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (epoll_ctl(epoll_, operation, fd, &event) != 0) Fail("epoll_ctl");
  }

  void AcceptAll() {
    for (;;) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
        // EMFILE and the like: leave the connection in the backlog.
        std::fprintf(stderr, "weft_epoll_echo: accept4: %s\n", std::strerror(errno));
        return;
      }
      const int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
      Watch(fd, EPOLLIN, EPOLL_CTL_ADD);
      open_.push_back(fd);
    }
  }

  void Echo(int fd) {
    const ssize_t n = read(fd, buffer_, sizeof(buffer_));
    if (n > 0) return Write(fd, buffer_, static_cast<std::size_t>(n));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Close(fd);  // the peer closed, or reset
  }

  // Writes what the socket takes; keeps the rest and waits for EPOLLOUT.
  void Write(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return Close(fd);
      }
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    if (size == 0) return;
    std::string& rest = unsent_[fd];
    const bool was_waiting = !rest.empty();
    rest.append(data, size);
    if (!was_waiting) Watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
  }

  void Flush(int fd) {
    std::string rest = std::move(unsent_[fd]);
    unsent_.erase(fd);
    Watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    Write(fd, rest.data(), rest.size());
  }

  void Close(int fd) {
    unsent_.erase(fd);
    close(fd);  // also leaves the epoll set
    for (std::size_t i = 0; i < open_.size(); ++i) {
      if (open_[i] == fd) {
        open_[i] = open_.back();
        open_.pop_back();
        break;
      }
    }
  }

  void CloseAll() {
    for (int fd : open_) close(fd);
    open_.clear();
    close(epoll_);
    close(listener_);
  }

  const int listener_;
  const int stop_;
  int epoll_ = -1;
  std::vector<int> open_;
  std::unordered_map<int, std::string> unsent_;
  char buffer_[kBufferBytes];
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "weft_epoll_echo [--port=0] [--threads=<CPUs>]: an epoll echo server, a loop per "
      "thread");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    std::fprintf(stderr, "weft_epoll_echo: --port is %d; it must be 0 to 65535\n",
                 FLAGS_port);
    return 2;
  }
  int threads = FLAGS_threads;
  if (threads == 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1 || threads > 256) {
    std::fprintf(stderr,
                 "weft_epoll_echo: --threads is %d; it must be 0 (one per CPU) to 256\n",
                 FLAGS_threads);
    return 2;
  }

  // SIGTERM and SIGINT are taken by sigwait below, in every thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) Fail("eventfd");
  std::vector<int> listeners = {ListenReusePort(FLAGS_port)};
  const int port = LocalPort(listeners[0]);
  while (static_cast<int>(listeners.size()) < threads) {
    listeners.push_back(ListenReusePort(port));
  }
  std::vector<std::thread> loops;
  for (int listener : listeners) {
    loops.emplace_back([listener, stop] { Loop(listener, stop).Run(); });
  }
  std::printf("listening 127.0.0.1:%d\n", port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  const uint64_t one = 1;
  if (write(stop, &one, sizeof(one)) != sizeof(one)) Fail("write(eventfd)");
  for (std::thread& loop : loops) loop.join();
  return 0;
}
