#include "runtime/scheduling_group/stack_overflow.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

namespace {

struct sigaction previous_action;
std::uintptr_t page_size = 4096;  // read at installation: sysconf is not signal-safe

// Async-signal-safe output: no stdio, no allocation.
class SignalMessage {
 public:
  SignalMessage& operator<<(const char* text) {
    const std::size_t n = std::strlen(text);
    Append(text, n);
    return *this;
  }
  SignalMessage& operator<<(std::uint64_t value) {
    char digits[20];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0) Append(&digits[--n], 1);
    return *this;
  }
  void Write() const {
    std::size_t done = 0;
    while (done < length_) {
      // The system call itself: the syscall hooks (hook/) must not see a
      // write made from a signal handler on a fiber's overflowed stack.
      const ssize_t n = syscall(SYS_write, STDERR_FILENO, buffer_ + done, length_ - done);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  void Append(const char* text, std::size_t n) {
    if (n > sizeof(buffer_) - length_) n = sizeof(buffer_) - length_;
    std::memcpy(buffer_ + length_, text, n);
    length_ += n;
  }

  char buffer_[512];
  std::size_t length_ = 0;
};

// Whether `address` lies in the guard page of the fiber the faulting thread runs,
// or just below it (a large frame can skip over the page).
bool IsGuardHit(const FiberEntity* fiber, std::uintptr_t address) {
  if (fiber == nullptr || !fiber->stack.guard) return false;
  const std::uintptr_t low = reinterpret_cast<std::uintptr_t>(fiber->stack.low);
  return address < low && address >= low - 16 * page_size;
}

// Restores the default action: returning from the handler runs the faulting
// access again, and the process dies of the signal as it would have without us.
void RestoreDefaultAction(int signal) {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_DFL;
  sigaction(signal, &action, nullptr);
}

void OnSegv(int signal, siginfo_t* info, void* context) {
  FiberWorker* worker = CurrentWorker();
  const FiberEntity* fiber = InFiber(worker) ? worker->current_fiber() : nullptr;
  if (IsGuardHit(fiber, reinterpret_cast<std::uintptr_t>(info->si_addr))) {
    SignalMessage message;
    message << "weft: fiber stack overflow: fiber " << fiber->id
            << " ran past the end of its "
            << static_cast<std::uint64_t>(fiber->stack.size)
            << "-byte stack into the guard page. Give it more stack: "
               "FiberAttributes::stack_size for this fiber, or --weft_fiber_stack_size "
               "(RuntimeOptions::stack_size) for every fiber; or make its frames smaller "
               "(deep recursion, large local arrays).\n";
    message.Write();
    RestoreDefaultAction(signal);
    return;
  }
  // Not ours: hand it to whoever handled SIGSEGV before, or die as usual.
  if ((previous_action.sa_flags & SA_SIGINFO) != 0 &&
      previous_action.sa_sigaction != nullptr) {
    previous_action.sa_sigaction(signal, info, context);
    return;
  }
  if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
      previous_action.sa_handler != nullptr) {
    previous_action.sa_handler(signal);
    return;
  }
  RestoreDefaultAction(signal);
}

}  // namespace

void InstallStackOverflowHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    page_size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_sigaction = &OnSegv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_action);
  });
}

AlternateSignalStack::AlternateSignalStack() {
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) {
    return;  // the thread has one already (a sanitizer's, or the application's)
  }
  size_ = 64 * 1024;
  void* memory =
      mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return;  // overflows then die without the message
  stack_t stack;
  stack.ss_sp = memory;
  stack.ss_size = size_;
  stack.ss_flags = 0;
  if (sigaltstack(&stack, nullptr) != 0) {
    munmap(memory, size_);
    return;
  }
  memory_ = memory;
}

AlternateSignalStack::~AlternateSignalStack() {
  if (memory_ == nullptr) return;
  stack_t disable;
  std::memset(&disable, 0, sizeof(disable));
  disable.ss_flags = SS_DISABLE;
  sigaltstack(&disable, nullptr);
  munmap(memory_, size_);
}

}  // namespace weft::detail
