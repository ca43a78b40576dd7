// Subprocess: a program the showcase runs as a child (a server under test, a
// load generator, wrk, nginx), with every wait bounded and the child always
// stopped by its process id.
//
// The child gets /dev/null as stdin, a pipe as stdout (read with ReadLine or
// ReadToEnd) and this process's stderr. It leads a process group of its own
// (so that a server's helpers, nginx's workers, can be killed with it as a
// last resort), and gets SIGTERM if the thread that started it ends (so that a
// showcase killed midway leaves no server behind).
//
// Not thread-safe: one thread starts, reads, waits for and stops a child.
#ifndef WEFT_BENCHMARK_NET_SUBPROCESS_H_
#define WEFT_BENCHMARK_NET_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace weft::bench::net {

class Subprocess {
 public:
  using Clock = std::chrono::steady_clock;

  struct Command {
    // argv[0] is the program: a path, or a name looked up in PATH.
    std::vector<std::string> argv;
    // "NAME=value" entries set in the child's environment, over this process's.
    std::vector<std::string> environment = {};
  };

  // Starts `command`. Returns nullptr and sets *error if the program cannot be
  // found or executed.
  static std::unique_ptr<Subprocess> Start(const Command& command, std::string* error);

  // Stops the child (Stop()) if it is still running.
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // A descriptor that polls readable once the child has ended (a pidfd), for
  // waiting on the child and something else at once.
  int exit_fd() const { return pidfd_; }

  // The next line the child writes to stdout, without its newline, waiting
  // until `deadline`. Returns false, with *error saying why, if the child
  // closes stdout (ends) first or the deadline passes.
  bool ReadLine(Clock::time_point deadline, std::string* line, std::string* error);

  // Everything the child writes to stdout until it closes it, waiting until
  // `deadline`. Returns false, with *error saying why, if the deadline passes.
  bool ReadToEnd(Clock::time_point deadline, std::string* output, std::string* error);

  // Waits until the child ends or `deadline` passes; returns whether it ended.
  bool Wait(Clock::time_point deadline);

  // Asks the child to end with SIGTERM and waits up to `grace`; then kills its
  // process group with SIGKILL and reaps it. Returns "" if it ended with
  // status 0 within the grace period, otherwise what happened. Does nothing
  // (returns "") if the child has already been reaped and ended cleanly.
  std::string Stop(Clock::duration grace = std::chrono::seconds(5));

  // Once ended: "exited with status N" or "killed by signal N".
  std::string DescribeEnd() const;
  bool ended() const { return ended_; }
  bool ended_cleanly() const;

 private:
  Subprocess() = default;
  // Reaps the child if it has ended; returns whether it has.
  bool Reap();
  // Reads what stdout has (waiting up to `deadline` for something); returns
  // false at EOF or when the deadline passed (*timed_out).
  bool Fill(Clock::time_point deadline, bool* timed_out, std::string* error);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdout_ = -1;
  std::string pending_;  // read from stdout, not yet returned
  bool ended_ = false;
  int status_ = 0;
  std::string program_;
};

// The path of `name` in PATH, or in /usr/local/sbin, /usr/sbin and /sbin
// (where Debian puts nginx, outside a normal user's PATH); "" if none.
std::string FindProgram(const std::string& name);

// The directory of the running executable, e.g. ".../build/release/benchmark".
std::string ExecutableDirectory();

// Whether `path` is an executable regular file.
bool IsExecutable(const std::string& path);

// Raises this process's soft RLIMIT_NOFILE, which children inherit, to
// `connections` + 256 descriptors if it is lower: a server or client holding
// that many connections needs them. Returns "" or why it cannot.
std::string RaiseDescriptorLimit(int connections);

}  // namespace weft::bench::net

#endif  // WEFT_BENCHMARK_NET_SUBPROCESS_H_
