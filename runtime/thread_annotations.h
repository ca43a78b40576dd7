// Clang's thread-safety annotations under a WEFT_ prefix, for weft's own locks
// and for code that uses weft's mutexes: with clang and -Wthread-safety, the
// compiler checks that a field marked WEFT_GUARDED_BY(mu) is only touched with
// `mu` held. On other compilers every macro is empty.
//
//   weft::FiberMutex mu;
//   int balance WEFT_GUARDED_BY(mu) = 0;
//   void Deposit(int n) {
//     mu.lock();
//     balance += n;  // without the lock: "writing variable 'balance' requires
//     mu.unlock();   //  holding mutex 'mu' exclusively"
//   }
//
// FiberMutex, FiberTimedMutex, FiberSharedMutex (shared and exclusive) and
// FiberSeqLock (its writers) are capabilities. The recursive mutexes are not
// (the analysis does not model re-entry). std::lock_guard and std::unique_lock
// of libstdc++ are not annotated, so the analysis does not see what they hold:
// lock and unlock explicitly, or use a scoped guard declared with
// WEFT_SCOPED_CAPABILITY, in code it should check.
#ifndef WEFT_RUNTIME_THREAD_ANNOTATIONS_H_
#define WEFT_RUNTIME_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define WEFT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define WEFT_THREAD_ANNOTATION(x)
#endif

#define WEFT_CAPABILITY(x) WEFT_THREAD_ANNOTATION(capability(x))
#define WEFT_SCOPED_CAPABILITY WEFT_THREAD_ANNOTATION(scoped_lockable)
#define WEFT_GUARDED_BY(x) WEFT_THREAD_ANNOTATION(guarded_by(x))
#define WEFT_PT_GUARDED_BY(x) WEFT_THREAD_ANNOTATION(pt_guarded_by(x))
#define WEFT_REQUIRES(...) WEFT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define WEFT_REQUIRES_SHARED(...) \
  WEFT_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define WEFT_ACQUIRE(...) WEFT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define WEFT_ACQUIRE_SHARED(...) \
  WEFT_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define WEFT_RELEASE(...) WEFT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define WEFT_RELEASE_SHARED(...) \
  WEFT_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define WEFT_TRY_ACQUIRE(...) WEFT_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define WEFT_TRY_ACQUIRE_SHARED(...) \
  WEFT_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))
#define WEFT_EXCLUDES(...) WEFT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define WEFT_ASSERT_CAPABILITY(x) WEFT_THREAD_ANNOTATION(assert_capability(x))
#define WEFT_RETURN_CAPABILITY(x) WEFT_THREAD_ANNOTATION(lock_returned(x))
#define WEFT_NO_THREAD_SAFETY_ANALYSIS WEFT_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // WEFT_RUNTIME_THREAD_ANNOTATIONS_H_
