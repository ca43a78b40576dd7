// What the example servers share besides weft itself: their command-line
// checks, the orderly shutdown on SIGTERM/SIGINT, the open-file limit and the
// registry that ends live connections at shutdown. A server of your own needs
// the same pieces in some form.
#ifndef WEFT_EXAMPLES_SERVER_SUPPORT_H_
#define WEFT_EXAMPLES_SERVER_SUPPORT_H_

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <mutex>
#include <system_error>
#include <unordered_set>

#include "runtime/runtime.h"
#include "runtime/sync/fiber_mutex.h"

namespace examples {

// Exits 2, naming the flag and the accepted range, unless lo <= value <= hi.
inline void CheckFlagRange(const char* program, const char* flag, std::int32_t value,
                           std::int32_t lo, std::int32_t hi) {
  if (value >= lo && value <= hi) return;
  std::fprintf(stderr, "%s: --%s=%d is out of range; accepted: %d..%d\n", program, flag,
               value, lo, hi);
  std::exit(2);
}

// Exits 2 with a message if gflags left a positional argument.
inline void CheckNoArguments(const char* program, int argc, char** argv) {
  if (argc <= 1) return;
  std::fprintf(stderr, "%s: unexpected argument '%s' (flags only; see --help)\n", program,
               argv[1]);
  std::exit(2);
}

// The runtime's options from the --weft_* flags, with `workers` worker
// threads; exits 2 with the option's message if they are invalid.
inline weft::RuntimeOptions RuntimeOptionsOrExit(const char* program, std::int32_t workers) {
  weft::RuntimeOptions options = weft::RuntimeOptions::FromFlags();
  options.concurrency_hint = static_cast<std::size_t>(workers);
  try {
    options.Validate();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    std::exit(2);
  }
  return options;
}

// Blocks SIGINT and SIGTERM in the calling thread. Threads started later
// (weft's workers and timer threads) inherit the mask, so no thread is
// interrupted by these signals: they stay pending until WaitForSignal() takes
// one. Call before the runtime starts.
inline sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

inline int WaitForSignal(const sigset_t& signals) {
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

// Each connection is a descriptor; 10,000 of them need more than the usual
// soft limit of 1,024. The hard limit is as far as an unprivileged process
// may go.
inline void RaiseOpenFileLimit(const char* program) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      std::fprintf(stderr, "%s: cannot raise the open-file limit: %s\n", program,
                   std::strerror(errno));
    }
  }
}

// A client that resets or goes away is business as usual, not worth a log line.
inline bool PeerWentAway(std::error_code error) {
  return error == std::errc::connection_reset || error == std::errc::broken_pipe;
}

// The connections being served, so that shutdown can end them. The fibers own
// their streams; the registry only knows the descriptors and ends a
// connection with shutdown(2): its fiber's Read returns 0 (its writes fail),
// the fiber returns and its stream closes the socket. Closing the stream from
// here instead would race with the fiber's own use of the stream object.
// Thread-safe.
class ConnectionRegistry {
 public:
  // Registers a connection; false once ShutdownAll() has run, when the caller
  // should close it at once.
  bool Add(int fd) {
    std::lock_guard<weft::FiberMutex> lock(mutex_);
    if (shut_down_) return false;
    fds_.insert(fd);
    return true;
  }

  // Call before closing the descriptor.
  void Remove(int fd) {
    std::lock_guard<weft::FiberMutex> lock(mutex_);
    fds_.erase(fd);
  }

  // Ends every connection registered now; later Add() calls fail.
  void ShutdownAll() {
    std::lock_guard<weft::FiberMutex> lock(mutex_);
    shut_down_ = true;
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  weft::FiberMutex mutex_;  // a plain thread (main) and fibers both lock it
  bool shut_down_ = false;
  std::unordered_set<int> fds_;
};

}  // namespace examples

#endif  // WEFT_EXAMPLES_SERVER_SUPPORT_H_
