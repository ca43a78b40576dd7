// The storage behind FiberLocal<T>: each fiber (and each plain thread) has a
// table of slots, one per live FiberLocal, created on first use. Internal: use
// runtime/fiber_local.h.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LOCAL_STORAGE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LOCAL_STORAGE_H_

#include <cstdint>
#include <vector>

namespace weft::detail {

// Names one FiberLocal. A slot is reused after its FiberLocal is destroyed, with
// a new generation, so that a value left behind by the old one is never handed
// to the new one.
struct LocalKey {
  std::uint32_t slot;
  std::uint64_t generation;
};

LocalKey AllocateLocalKey();
void FreeLocalKey(LocalKey key);

class LocalTable {
 public:
  LocalTable() = default;
  LocalTable(const LocalTable&) = delete;
  LocalTable& operator=(const LocalTable&) = delete;
  ~LocalTable() { DestroyAll(); }

  // The object stored for `key`, created with `create` if there is none (a value
  // of an earlier FiberLocal in the same slot is destroyed first).
  void* Get(LocalKey key, void* (*create)(), void (*destroy)(void*));

  // Destroys every object, newest slot first. A destructor may use FiberLocals
  // again; what it creates is destroyed too.
  void DestroyAll();

 private:
  struct Entry {
    std::uint64_t generation = 0;
    void* object = nullptr;
    void (*destroy)(void*) = nullptr;
  };
  std::vector<Entry> entries_;
};

// The calling fiber's table (created on first use, destroyed when the fiber's
// callable has returned, before Join() returns), or the calling plain thread's.
LocalTable& CurrentLocalTable();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LOCAL_STORAGE_H_
