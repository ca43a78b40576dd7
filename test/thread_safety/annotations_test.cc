// weft's mutexes as capabilities: code that guards its fields with them is
// checked by clang's -Wthread-safety (the thread-safety build compiles this
// file with -Wthread-safety -Werror). Every pattern here is correct; the
// misuse that must be rejected is in misuse.cc. It also instantiates the
// templates of the public sync headers, so that their own annotated code is
// checked, and runs as an ordinary test.
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_seq_lock.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/sync/fiber_timed_mutex.h"
#include "runtime/thread_annotations.h"
#include "test/test_util.h"

namespace weft {
namespace {

class Account {
 public:
  void Deposit(int amount) WEFT_EXCLUDES(mutex_) {
    mutex_.lock();
    balance_ += amount;
    mutex_.unlock();
  }
  bool TryDeposit(int amount) {
    if (!timed_.try_lock_for(std::chrono::milliseconds(1))) return false;
    deposits_ += amount;
    timed_.unlock();
    return true;
  }
  int Balance() WEFT_EXCLUDES(mutex_) {
    mutex_.lock();
    const int balance = balance_;
    mutex_.unlock();
    return balance;
  }
  int Deposits() {
    timed_.lock();
    const int deposits = deposits_;
    timed_.unlock();
    return deposits;
  }
  // A caller that already holds the lock says so.
  void AddLocked(int amount) WEFT_REQUIRES(mutex_) { balance_ += amount; }
  void Add(int amount) {
    mutex_.lock();
    AddLocked(amount);
    mutex_.unlock();
  }

 private:
  FiberMutex mutex_;
  int balance_ WEFT_GUARDED_BY(mutex_) = 0;
  FiberTimedMutex timed_;
  int deposits_ WEFT_GUARDED_BY(timed_) = 0;
};

class Table {
 public:
  int Read() {
    mutex_.lock_shared();
    const int value = value_;
    mutex_.unlock_shared();
    return value;
  }
  void Write(int value) {
    mutex_.lock();
    value_ = value;
    mutex_.unlock();
  }
  void WriteVersioned(std::uint64_t value) {
    seq_.lock();
    versioned_ = value;
    seq_.unlock();
  }

 private:
  FiberSharedMutex mutex_;
  int value_ WEFT_GUARDED_BY(mutex_) = 0;
  FiberSeqLock seq_;
  std::uint64_t versioned_ WEFT_GUARDED_BY(seq_) = 0;
};

TEST(ThreadSafetyAnnotations, GuardedFieldsUnderTheirMutexes) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  Account account;
  Table table;
  std::vector<std::thread> threads;
  for (int t = 0; t != 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i != 1000; ++i) {
        account.Deposit(1);
        account.Add(1);
        while (!account.TryDeposit(1)) {
        }
        table.Write(i);
        table.WriteVersioned(static_cast<std::uint64_t>(i));
        EXPECT_GE(table.Read(), 0);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(account.Balance(), 8000);
  EXPECT_EQ(account.Deposits(), 4000);
}

// The channel's annotated template code, instantiated here.
TEST(ThreadSafetyAnnotations, ChannelTemplatesInstantiate) {
  FiberChannel<int> channel(2);
  EXPECT_TRUE(channel.TryPush(1));
  EXPECT_EQ(channel.PushFor(2, std::chrono::milliseconds(1)), ChannelStatus::kOk);
  EXPECT_EQ(channel.TryPop(), 1);
  EXPECT_EQ(channel.PopFor(std::chrono::milliseconds(1)).value, 2);
  channel.Close();
  EXPECT_FALSE(channel.Pop().has_value());
}

}  // namespace
}  // namespace weft
