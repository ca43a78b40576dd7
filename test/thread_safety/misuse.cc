// Misuse that clang's -Wthread-safety must reject, one case per MISUSE value
// (test/thread_safety/CMakeLists.txt compiles each and expects the named
// error); MISUSE=0 is the same code used correctly, which must compile.
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/thread_annotations.h"

#ifndef MISUSE
#define MISUSE 0
#endif

class Account {
 public:
  void Deposit(int amount) {
#if MISUSE == 1
    balance += amount;  // no lock: rejected
#else
    balance_mutex.lock();
    balance += amount;
    balance_mutex.unlock();
#endif
  }

  int Read() {
#if MISUSE == 2
    return shared_value;  // neither a shared nor an exclusive lock: rejected
#else
    table_mutex.lock_shared();
    const int value = shared_value;
    table_mutex.unlock_shared();
    return value;
#endif
  }

  void Write(int value) {
#if MISUSE == 3
    table_mutex.lock_shared();
    shared_value = value;  // writing under a shared lock: rejected
    table_mutex.unlock_shared();
#else
    table_mutex.lock();
    shared_value = value;
    table_mutex.unlock();
#endif
  }

  void Forget() {
    balance_mutex.lock();
    balance = 0;
#if MISUSE != 4
    balance_mutex.unlock();  // with MISUSE 4 the lock leaks out: rejected
#endif
  }

 private:
  weft::FiberMutex balance_mutex;
  int balance WEFT_GUARDED_BY(balance_mutex) = 0;
  weft::FiberSharedMutex table_mutex;
  int shared_value WEFT_GUARDED_BY(table_mutex) = 0;
};

int main() {
  Account account;
  account.Deposit(1);
  account.Write(account.Read());
  account.Forget();
  return 0;
}
