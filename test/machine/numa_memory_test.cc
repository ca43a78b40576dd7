#include "runtime/machine/numa_memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "runtime/scheduling_group/run_queue.h"

namespace weft::detail {
namespace {

// From the kernel's uapi mempolicy.h.
constexpr int kMpolDefault = 0;
constexpr int kMpolPreferred = 1;
constexpr unsigned long kMpolFNode = 1;
constexpr unsigned long kMpolFAddr = 2;

// The memory policy of the mapping that holds `address`, and its node mask.
int PolicyAt(void* address, unsigned long* mask) {
  int mode = -1;
  unsigned long words[2] = {0, 0};
  EXPECT_EQ(
      syscall(SYS_get_mempolicy, &mode, words, 8 * sizeof(words), address, kMpolFAddr), 0)
      << std::strerror(errno);
  *mask = words[0];
  return mode;
}

// Whether this kernel lets the process set memory policies (some containers
// forbid it; the allocation then falls back to the default policy by design).
bool MbindPermitted() {
  void* page =
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned long mask[2] = {1, 0};
  const bool ok =
      syscall(SYS_mbind, page, 4096, kMpolPreferred, mask, 8 * sizeof(mask), 0) == 0;
  munmap(page, 4096);
  return ok;
}

TEST(NumaMemory, PrefersTheRequestedNode) {
  if (!MbindPermitted()) GTEST_SKIP() << "mbind is not permitted here";
  constexpr std::size_t kBytes = 3 * 4096 + 100;
  auto* memory = static_cast<char*>(AllocateOnNumaNode(kBytes, 0));
  unsigned long mask = 0;
  EXPECT_EQ(PolicyAt(memory, &mask), kMpolPreferred);
  EXPECT_EQ(mask, 1UL) << "node 0";
  std::memset(memory, 0x5a, kBytes);
  int node = -1;
  ASSERT_EQ(
      syscall(SYS_get_mempolicy, &node, nullptr, 0, memory, kMpolFNode | kMpolFAddr), 0);
  EXPECT_EQ(node, 0) << "the touched page";
  FreeOnNumaNode(memory, kBytes);
}

TEST(NumaMemory, NegativeNodeKeepsTheDefaultPolicy) {
  auto* memory = static_cast<char*>(AllocateOnNumaNode(100, -1));
  unsigned long mask = 0;
  EXPECT_EQ(PolicyAt(memory, &mask), kMpolDefault);
  FreeOnNumaNode(memory, 100);
}

TEST(NumaMemory, IsZeroFilledAndUsableEvenForANodeThatDoesNotExist) {
  constexpr std::size_t kBytes = 10000;
  auto* memory = static_cast<unsigned char*>(AllocateOnNumaNode(kBytes, 1000));
  for (std::size_t i = 0; i != kBytes; ++i) ASSERT_EQ(memory[i], 0u) << i;
  std::memset(memory, 0xff, kBytes);
  FreeOnNumaNode(memory, kBytes);
}

struct Counted {
  explicit Counted(int* live) : live(live) { ++*live; }
  ~Counted() { --*live; }
  int* live;
  alignas(64) char payload[200];
};

TEST(NumaMemory, MakeOnNumaNodeConstructsAndItsPointerDestroys) {
  int live = 0;
  {
    NumaNodePtr<Counted> object = MakeOnNumaNode<Counted>(0, &live);
    EXPECT_EQ(live, 1);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(object.get()) % 64, 0u);
  }
  EXPECT_EQ(live, 0);
}

TEST(NumaMemory, RunQueueOnANodeKeepsFifoOrder) {
  RunQueue<int> queue(1024, 0);
  int values[1024];
  for (int& v : values) ASSERT_TRUE(queue.Push(&v));
  EXPECT_FALSE(queue.Push(&values[0]));
  for (int& v : values) ASSERT_EQ(queue.Pop(), &v);
  EXPECT_EQ(queue.Pop(), nullptr);
}

}  // namespace
}  // namespace weft::detail
