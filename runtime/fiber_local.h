// FiberLocal<T>: a variable with one instance per fiber, like thread_local is one
// per thread. Fibers move between worker threads, so thread_local variables are
// shared by every fiber that happens to run on a thread, and a fiber that reads
// one, blocks and resumes elsewhere sees another thread's copy; FiberLocal follows
// the fiber instead.
//
//   weft::FiberLocal<RequestContext> context;   // usually a static or global
//   ...
//   context->trace_id = id;                      // this fiber's instance
//
// The instance is value-initialized (T()) on the fiber's first access and
// destroyed when the fiber's callable has returned, before Join() returns. On a
// plain thread, the thread has its own instance, destroyed when the thread
// exits. Thread-safe: each fiber touches only its own instance.
//
// A FiberLocal must outlive every access to it. Destroying it leaves each
// fiber's instance in place until that fiber exits (it is unreachable from then
// on); a FiberLocal created later never sees those values.
#ifndef WEFT_RUNTIME_FIBER_LOCAL_H_
#define WEFT_RUNTIME_FIBER_LOCAL_H_

#include "runtime/scheduling_group/fiber_local_storage.h"

namespace weft {

template <class T>
class FiberLocal {
 public:
  FiberLocal() : key_(detail::AllocateLocalKey()) {}
  ~FiberLocal() { detail::FreeLocalKey(key_); }
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  // The calling fiber's (or plain thread's) instance, created on first access.
  // Do not keep the pointer across fibers; within the fiber it stays valid until
  // the fiber exits.
  T* get() const {
    return static_cast<T*>(detail::CurrentLocalTable().Get(key_, &Create, &Destroy));
  }
  T& operator*() const { return *get(); }
  T* operator->() const { return get(); }

 private:
  static void* Create() { return new T(); }
  static void Destroy(void* object) { delete static_cast<T*>(object); }

  const detail::LocalKey key_;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_FIBER_LOCAL_H_
