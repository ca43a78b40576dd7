// Reporting fiber stack overflows. A fiber that runs off the bottom of its stack
// touches the guard page below it; the SIGSEGV handler installed here recognises
// that address, prints which fiber overflowed and how to give it more stack, and
// lets the process die of the signal as it would have. Any other SIGSEGV goes to
// the handler that was installed before, or kills the process unchanged.
//
// The handler runs on an alternate signal stack, since the fiber's own stack is
// exactly what is exhausted; every worker thread has one.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_STACK_OVERFLOW_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_STACK_OVERFLOW_H_

namespace weft::detail {

// Installs the SIGSEGV handler once per process (later calls do nothing).
void InstallStackOverflowHandler();

// Gives the calling thread an alternate signal stack, unless it has one; undone
// by ~AlternateSignalStack. For worker threads.
class AlternateSignalStack {
 public:
  AlternateSignalStack();
  ~AlternateSignalStack();
  AlternateSignalStack(const AlternateSignalStack&) = delete;
  AlternateSignalStack& operator=(const AlternateSignalStack&) = delete;

 private:
  void* memory_ = nullptr;
  unsigned long size_ = 0;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_STACK_OVERFLOW_H_
