// Value types for the future tests: an exception that is not a std::exception,
// and a value that counts its live instances.
#ifndef WEFT_TEST_FUTURE_FUTURE_TEST_UTIL_H_
#define WEFT_TEST_FUTURE_FUTURE_TEST_UTIL_H_

#include <atomic>
#include <utility>

namespace weft::testing {

// Thrown to check that the original type survives (no slicing to std::exception).
struct CustomError {
  int code;
};

// Adds one to `*alive` while it holds a value; a moved-from Tracked holds none.
// Counts values destroyed too often (negative) or never (positive at the end).
class Tracked {
 public:
  explicit Tracked(std::atomic<int>* alive, int value = 0)
      : alive_(alive), value_(value) {
    alive_->fetch_add(1, std::memory_order_relaxed);
  }
  Tracked(Tracked&& other) noexcept
      : alive_(std::exchange(other.alive_, nullptr)), value_(other.value_) {}
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    if (alive_ != nullptr) alive_->fetch_sub(1, std::memory_order_relaxed);
  }
  int value() const { return value_; }

 private:
  std::atomic<int>* alive_;
  int value_;
};

}  // namespace weft::testing

#endif  // WEFT_TEST_FUTURE_FUTURE_TEST_UTIL_H_
