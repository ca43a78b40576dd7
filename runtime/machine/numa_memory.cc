#include "runtime/machine/numa_memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <vector>

namespace weft::detail {
namespace {

// From the kernel's uapi mempolicy.h (libnuma's numaif.h is not a dependency).
constexpr int kMpolPreferred = 1;

std::size_t PageRound(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

}  // namespace

void* AllocateOnNumaNode(std::size_t bytes, int node) {
  const std::size_t length = PageRound(bytes == 0 ? 1 : bytes);
  void* memory =
      mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();
  if (node >= 0) {
    constexpr std::size_t kBitsPerWord = sizeof(unsigned long) * CHAR_BIT;
    // One spare word: the kernel reads one bit fewer than `maxnode` says.
    std::vector<unsigned long> mask(static_cast<std::size_t>(node) / kBitsPerWord + 2);
    mask[static_cast<std::size_t>(node) / kBitsPerWord] |=
        1UL << (static_cast<std::size_t>(node) % kBitsPerWord);
    // Best effort: without NUMA support (or permission, in some containers) the
    // pages simply follow the default first-touch policy.
    syscall(SYS_mbind, memory, length, kMpolPreferred, mask.data(),
            mask.size() * kBitsPerWord, 0);
  }
  return memory;
}

void FreeOnNumaNode(void* memory, std::size_t bytes) {
  if (memory != nullptr) munmap(memory, PageRound(bytes == 0 ? 1 : bytes));
}

}  // namespace weft::detail
