#include "runtime/scheduling_group/fiber_local_storage.h"

#include <mutex>

#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

namespace {

// Slots of live and dead FiberLocals. Never destroyed: thread-exit destructors
// of LocalTables may still run during process exit.
class KeyRegistry {
 public:
  static KeyRegistry& Instance() {
    static auto* registry = new KeyRegistry;
    return *registry;
  }

  LocalKey Allocate() {
    LockGuard<Mutex> lock(mu_);
    if (free_slots_.empty()) {
      generations_.push_back(1);
      return LocalKey{static_cast<std::uint32_t>(generations_.size() - 1), 1};
    }
    const std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return LocalKey{slot, ++generations_[slot]};
  }

  void Free(LocalKey key) {
    LockGuard<Mutex> lock(mu_);
    free_slots_.push_back(key.slot);
  }

 private:
  Mutex mu_;
  std::vector<std::uint64_t> generations_;  // the latest generation of each slot
  std::vector<std::uint32_t> free_slots_;
};

thread_local LocalTable thread_table;

}  // namespace

LocalKey AllocateLocalKey() { return KeyRegistry::Instance().Allocate(); }

void FreeLocalKey(LocalKey key) { KeyRegistry::Instance().Free(key); }

void* LocalTable::Get(LocalKey key, void* (*create)(), void (*destroy)(void*)) {
  if (key.slot >= entries_.size()) entries_.resize(key.slot + 1);
  Entry& entry = entries_[key.slot];
  if (entry.object != nullptr && entry.generation == key.generation) return entry.object;
  if (entry.object != nullptr) {
    // A dead FiberLocal's value: its type may differ from the new one's.
    void* stale = entry.object;
    void (*stale_destroy)(void*) = entry.destroy;
    entry.object = nullptr;
    stale_destroy(stale);
  }
  void* object = create();
  // `create` may itself have used FiberLocals and grown entries_.
  Entry& slot = entries_[key.slot];
  slot.generation = key.generation;
  slot.object = object;
  slot.destroy = destroy;
  return object;
}

void LocalTable::DestroyAll() {
  for (bool destroyed = true; destroyed;) {
    destroyed = false;
    for (std::size_t i = entries_.size(); i-- > 0;) {
      if (entries_[i].object == nullptr) continue;
      void* object = entries_[i].object;
      void (*destroy)(void*) = entries_[i].destroy;
      entries_[i].object = nullptr;
      destroy(object);  // may add entries again: hence the outer loop
      destroyed = true;
    }
  }
}

LocalTable& CurrentLocalTable() {
  FiberWorker* worker = CurrentWorker();
  if (!InFiber(worker)) return thread_table;
  FiberEntity* fiber = worker->current_fiber();
  if (fiber->locals == nullptr) fiber->locals = new LocalTable;
  return *fiber->locals;
}

void DestroyFiberLocals(FiberEntity* fiber) {
  if (fiber->locals == nullptr) return;
  // Destructors run in the fiber and may use FiberLocals (the table stays in
  // place meanwhile) and even block.
  fiber->locals->DestroyAll();
  delete fiber->locals;
  fiber->locals = nullptr;
}

}  // namespace weft::detail
