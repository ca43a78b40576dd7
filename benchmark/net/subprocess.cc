#include "benchmark/net/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace weft::bench::net {

namespace {

using Clock = Subprocess::Clock;

std::string SystemError(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

int MillisecondsUntil(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::min<std::int64_t>(
      std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1'000'000));
}

// This process's environment with `overrides` ("NAME=value") put over it.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> merged;
  auto name_of = [](const std::string& entry) {
    return entry.substr(0, entry.find('='));
  };
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const bool overridden =
        std::any_of(overrides.begin(), overrides.end(),
                    [&](const std::string& o) { return name_of(o) == name_of(text); });
    if (!overridden) merged.push_back(text);
  }
  merged.insert(merged.end(), overrides.begin(), overrides.end());
  return merged;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

bool IsExecutable(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return IsExecutable(name) ? name : "";
  std::string directories = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  directories += ":/usr/local/sbin:/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= directories.size()) {
    std::size_t end = directories.find(':', start);
    if (end == std::string::npos) end = directories.size();
    const std::string directory = directories.substr(start, end - start);
    if (!directory.empty() && IsExecutable(directory + "/" + name)) {
      return directory + "/" + name;
    }
    start = end + 1;
  }
  return "";
}

std::string ExecutableDirectory() {
  char path[4096];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) return ".";
  path[length] = '\0';
  std::string text = path;
  const auto slash = text.rfind('/');
  return slash == std::string::npos ? "." : text.substr(0, slash);
}

std::unique_ptr<Subprocess> Subprocess::Start(const Command& command,
                                              std::string* error) {
  if (command.argv.empty()) {
    *error = "no program to run";
    return nullptr;
  }
  const std::string program = FindProgram(command.argv[0]);
  if (program.empty()) {
    *error = command.argv[0] + " not found";
    return nullptr;
  }
  // Everything the child needs is built before fork: after it, in a process
  // with threads, the child may only make async-signal-safe calls.
  std::vector<std::string> arguments = command.argv;
  std::vector<std::string> environment = MergedEnvironment(command.environment);
  std::vector<char*> argv = Pointers(arguments);
  std::vector<char*> envp = Pointers(environment);
  const int null_input = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int output[2];
  int exec_error[2];  // carries errno if execve fails; closed by a successful one
  if (null_input < 0 || pipe2(output, O_CLOEXEC) != 0 ||
      pipe2(exec_error, O_CLOEXEC) != 0) {
    *error = SystemError("pipe2");
    return nullptr;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    *error = SystemError("fork");
    return nullptr;
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);  // the parent is already gone
    dup2(null_input, STDIN_FILENO);
    dup2(output[1], STDOUT_FILENO);
    execve(program.c_str(), argv.data(), envp.data());
    const int failure = errno;
    ssize_t ignored = write(exec_error[1], &failure, sizeof(failure));
    (void)ignored;
    _exit(127);
  }
  // Also here, so that the group exists whichever side runs first.
  setpgid(pid, pid);
  close(null_input);
  close(output[1]);
  close(exec_error[1]);
  std::unique_ptr<Subprocess> child(new Subprocess);
  child->pid_ = pid;
  child->stdout_ = output[0];
  child->program_ = program;
  child->pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  int failure = 0;
  ssize_t n;
  do {
    n = read(exec_error[0], &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  close(exec_error[0]);
  if (n == sizeof(failure)) {
    errno = failure;
    *error = SystemError("cannot execute " + program);
    child->Wait(Clock::now() + std::chrono::seconds(5));
    return nullptr;
  }
  if (child->pidfd_ < 0) {
    // Without a pidfd no wait could have a deadline.
    *error = SystemError("pidfd_open (Linux 5.3 or later is needed)");
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, &child->status_, 0);
    child->ended_ = true;
    return nullptr;
  }
  return child;
}

Subprocess::~Subprocess() {
  if (!ended_) Stop();
  if (stdout_ >= 0) close(stdout_);
  if (pidfd_ >= 0) close(pidfd_);
}

bool Subprocess::Reap() {
  if (ended_) return true;
  const pid_t reaped = waitpid(pid_, &status_, WNOHANG);
  if (reaped == pid_) ended_ = true;
  return ended_;
}

bool Subprocess::Wait(Clock::time_point deadline) {
  for (;;) {
    if (Reap()) return true;
    pollfd ready{pidfd_, POLLIN, 0};
    const int timeout = MillisecondsUntil(deadline);
    const int n = poll(&ready, 1, timeout);
    if (n == 0 && timeout == 0) return Reap();
    if (n < 0 && errno != EINTR) return Reap();
  }
}

std::string Subprocess::Stop(Clock::duration grace) {
  if (!Reap()) {
    kill(pid_, SIGTERM);
    if (!Wait(Clock::now() + grace)) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      Wait(Clock::now() + std::chrono::seconds(30));
      return program_ + " did not end within " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::seconds>(grace).count()) +
             " s of SIGTERM and was killed";
    }
  }
  return ended_cleanly() ? "" : program_ + " " + DescribeEnd();
}

bool Subprocess::ended_cleanly() const {
  return ended_ && WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
}

std::string Subprocess::DescribeEnd() const {
  if (!ended_) return "is still running";
  if (WIFEXITED(status_))
    return "exited with status " + std::to_string(WEXITSTATUS(status_));
  if (WIFSIGNALED(status_))
    return "was killed by signal " + std::to_string(WTERMSIG(status_));
  return "ended";
}

bool Subprocess::Fill(Clock::time_point deadline, bool* timed_out, std::string* error) {
  *timed_out = false;
  for (;;) {
    pollfd ready{stdout_, POLLIN, 0};
    const int timeout = MillisecondsUntil(deadline);
    const int n = poll(&ready, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = SystemError("poll");
      return false;
    }
    if (n == 0) {
      *timed_out = true;
      return false;
    }
    char buffer[4096];
    const ssize_t got = read(stdout_, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *error = SystemError("read");
      return false;
    }
    if (got == 0) return false;
    pending_.append(buffer, static_cast<std::size_t>(got));
    return true;
  }
}

bool Subprocess::ReadLine(Clock::time_point deadline, std::string* line,
                          std::string* error) {
  for (;;) {
    const auto newline = pending_.find('\n');
    if (newline != std::string::npos) {
      *line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      return true;
    }
    bool timed_out = false;
    error->clear();
    if (Fill(deadline, &timed_out, error)) continue;
    if (!error->empty()) return false;
    if (timed_out) {
      *error = program_ + " printed no line in time";
    } else {
      Wait(Clock::now() + std::chrono::seconds(1));
      *error = program_ + " ended before printing a line" +
               (ended_ ? " (" + DescribeEnd() + ")" : "");
    }
    return false;
  }
}

bool Subprocess::ReadToEnd(Clock::time_point deadline, std::string* output,
                           std::string* error) {
  for (;;) {
    bool timed_out = false;
    error->clear();
    if (Fill(deadline, &timed_out, error)) continue;
    if (!error->empty()) return false;
    *output = std::move(pending_);
    pending_.clear();
    if (timed_out) *error = program_ + " did not finish in time";
    return !timed_out;
  }
}

std::string RaiseDescriptorLimit(int connections) {
  const rlim_t needed = static_cast<rlim_t>(connections) + 256;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "getrlimit(RLIMIT_NOFILE) failed";
  if (limit.rlim_cur >= needed) return "";
  if (limit.rlim_max < needed) {
    return "RLIMIT_NOFILE's hard limit " + std::to_string(limit.rlim_max) +
           " is below the " + std::to_string(needed) + " descriptors a server needs";
  }
  limit.rlim_cur = needed;
  return setrlimit(RLIMIT_NOFILE, &limit) == 0 ? "" : "setrlimit(RLIMIT_NOFILE) failed";
}

}  // namespace weft::bench::net
