// Helpers shared by the hook tests: a runtime of two workers, descriptors
// made the way a C library user makes them (not through weft::io), and a
// check that a worker is still free while fibers are blocked in hooked calls.
#ifndef WEFT_TEST_HOOK_HOOK_TEST_UTIL_H_
#define WEFT_TEST_HOOK_HOOK_TEST_UTIL_H_

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "test/test_util.h"

namespace weft::testing {

// The flags the kernel has for `fd` (not what the hooked fcntl shows), read
// from /proc/self/fdinfo.
inline int KernelFlags(int fd) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
  std::string key;
  while (info >> key) {
    if (key == "flags:") {
      std::string octal;
      info >> octal;
      return static_cast<int>(std::stol(octal, nullptr, 8));
    }
  }
  return -1;
}

// Whether weft has adopted `fd` (made it non-blocking and registered it).
inline bool Adopted(int fd) {
  detail::DescriptorState* slot = detail::FindDescriptorSlot(fd);
  return slot != nullptr && (slot->word.load() & detail::DescriptorState::kOpen) != 0;
}

// A fiber can still run: both workers are not stuck in system calls. Starts
// one and waits (generously) for it.
inline ::testing::AssertionResult AWorkerIsFree() {
  auto ran = std::make_shared<std::atomic<bool>>(false);
  if (!StartFiberDetached([ran] { ran->store(true); })) {
    return ::testing::AssertionFailure() << "could not start the probe fiber";
  }
  return PollUntil([&] { return ran->load(); },
                   "a fiber to run while others are blocked in hooked calls (a worker "
                   "is blocked in the C library: the hook did not apply)");
}

// A connected pair of Unix sockets (`type`: SOCK_STREAM or SOCK_DGRAM) made
// with the C library; closes the ends still open (not -1) when destroyed.
struct SocketPair {
  int a = -1, b = -1;
  SocketPair(int type = SOCK_STREAM) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, type, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

// Two workers, the layout of the hiredis and libcurl proofs.
inline RuntimeOptions TwoWorkers() {
  RuntimeOptions options = OptionsWithWorkers(2);
  options.scheduling_group_size = 2;
  return options;
}

}  // namespace weft::testing

#endif  // WEFT_TEST_HOOK_HOOK_TEST_UTIL_H_
