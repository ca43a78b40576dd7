// The states behind WhenAll, WhenAny and WhenAnyWithoutException
// (runtime/future/when_all.h): one shared state watching several inputs.
// Internal: use runtime/future/when_all.h.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_WHEN_ALL_STATE_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_WHEN_ALL_STATE_H_

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/future/future.h"

namespace weft::detail {

// A state completed by several input states: it watches each input with one
// continuation slot, and keeps a reference to itself until every input has
// fired (so that late inputs of WhenAny find it alive).
template <class R>
class CombinatorState : public SharedState<R> {
 protected:
  // References: one for the result future, one for the inputs still pending.
  explicit CombinatorState(std::size_t inputs)
      : SharedState<R>(/*references=*/2), slots_(inputs), pending_(inputs) {
    for (std::size_t i = 0; i != inputs; ++i) slots_[i] = Slot(this, i);
  }

  // Called once per input, when input `index` is ready. Returns a continuation
  // to fire next (the result's, when this input completes it), or nullptr.
  virtual Continuation* OnInputReady(std::size_t index) noexcept = 0;

  // Starts watching input `index`; call once all inputs are recorded.
  void Watch(std::size_t index, SharedStateBase& input) noexcept {
    FireChain(input.Install(&slots_[index]));
  }

  // Counts an input as fired; true for the last one.
  bool CountFired() noexcept {
    return pending_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }

  Continuation* PublishAndDrop() noexcept {
    Continuation* next = this->Publish();
    this->DropReference();  // the pending inputs' reference; `this` may be gone
    return next;
  }

 private:
  class Slot final : public Continuation {
   public:
    Slot() = default;
    Slot(CombinatorState* owner, std::size_t index) : owner_(owner), index_(index) {}
    Continuation* Fire() noexcept override { return owner_->OnInputReady(index_); }

   private:
    CombinatorState* owner_ = nullptr;
    std::size_t index_ = 0;
  };

  std::vector<Slot> slots_;
  std::atomic<std::size_t> pending_;
};

// A combinator over a vector of futures: takes their states (each must be
// valid; `operation` names the caller in the abort message) and watches them.
template <class R, class T>
class VectorCombinatorState : public CombinatorState<R> {
 public:
  // Call once the state is fully constructed; inputs already ready fire here.
  void Start() noexcept {
    for (std::size_t i = 0; i != inputs_.size(); ++i) this->Watch(i, *inputs_[i]);
  }

 protected:
  VectorCombinatorState(std::vector<Future<T>>& inputs, const char* operation)
      : CombinatorState<R>(inputs.size()) {
    inputs_.reserve(inputs.size());
    for (Future<T>& input : inputs) {
      inputs_.push_back(FutureAccess::ReleaseValid(input, operation));
    }
  }

  std::vector<SharedState<T>*> inputs_;
};

template <class T>
using WhenAllVectorResult = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

// WhenAll over a vector: completes when every input has; holds each input until
// then and moves the values out in input order.
template <class T>
class WhenAllVectorState final : public VectorCombinatorState<WhenAllVectorResult<T>, T> {
 public:
  explicit WhenAllVectorState(std::vector<Future<T>>& inputs)
      : VectorCombinatorState<WhenAllVectorResult<T>, T>(inputs, "weft::WhenAll") {}
  ~WhenAllVectorState() override {
    for (SharedState<T>* input : this->inputs_) input->DropReference();
  }

 private:
  Continuation* OnInputReady(std::size_t) noexcept override {
    if (!this->CountFired()) return nullptr;
    // Every input is ready; the counter's acquire-release chain makes all of
    // their outcomes visible here.
    for (SharedState<T>* input : this->inputs_) {
      if (input->exception()) {
        this->StoreException(input->exception());
        return this->PublishAndDrop();
      }
    }
    StoreResultOf(*this, [this] {
      if constexpr (!std::is_void_v<T>) {
        std::vector<T> values;
        values.reserve(this->inputs_.size());
        for (SharedState<T>* input : this->inputs_) {
          values.push_back(std::move(input->value()));
        }
        return values;
      }
    });
    return this->PublishAndDrop();
  }
};

template <class T>
using WhenAnyResult =
    std::conditional_t<std::is_void_v<T>, std::size_t, std::pair<std::size_t, T>>;

// Which input decides a WhenAny.
enum class AnyOf {
  kFirstToComplete,  // WhenAny: the first input to fire, success or failure
  kFirstSuccess,     // WhenAnyWithoutException: the first success, or else the
                     // last failure
};

// WhenAny and WhenAnyWithoutException: once an input decides, later ones are
// released as they come.
template <class T, AnyOf kRule>
class WhenAnyState final : public VectorCombinatorState<WhenAnyResult<T>, T> {
 public:
  explicit WhenAnyState(std::vector<Future<T>>& inputs)
      : VectorCombinatorState<WhenAnyResult<T>, T>(
            inputs, kRule == AnyOf::kFirstToComplete ? "weft::WhenAny"
                                                     : "weft::WhenAnyWithoutException") {}

 private:
  // Whether input `input`, just fired, decides the result.
  bool Decides(const SharedState<T>& input) noexcept {
    if constexpr (kRule == AnyOf::kFirstSuccess) {
      if (input.exception()) {
        // Every input has failed only if this is the last of them to fail; no
        // success can come after that, so the last failure decides alone.
        return failures_.fetch_add(1, std::memory_order_acq_rel) + 1 ==
               this->inputs_.size();
      }
    }
    return !decided_.exchange(true, std::memory_order_acq_rel);
  }

  Continuation* OnInputReady(std::size_t index) noexcept override {
    SharedState<T>* input = this->inputs_[index];
    Continuation* next = nullptr;
    if (Decides(*input)) {
      if (input->exception()) {
        this->StoreException(input->exception());
      } else {
        StoreResultOf(*this, [&] {
          if constexpr (std::is_void_v<T>) {
            return index;
          } else {
            return std::pair<std::size_t, T>(index, std::move(input->value()));
          }
        });
      }
      next = this->Publish();
    }
    input->DropReference();
    if (this->CountFired()) this->DropReference();  // `this` may be gone
    return next;
  }

  std::atomic<bool> decided_{false};
  std::atomic<std::size_t> failures_{0};  // counted by kFirstSuccess only
};

// The tuple of the non-void types among Ts; void if there are none.
template <class... Ts>
using NonVoidTuple = decltype(std::tuple_cat(
    std::declval<
        std::conditional_t<std::is_void_v<Ts>, std::tuple<>, std::tuple<Ts>>>()...));
template <class... Ts>
using WhenAllTupleResult = std::conditional_t<std::tuple_size_v<NonVoidTuple<Ts...>> == 0,
                                              void, NonVoidTuple<Ts...>>;

// WhenAll over futures of different types.
template <class... Ts>
class WhenAllTupleState final : public CombinatorState<WhenAllTupleResult<Ts...>> {
  using Result = WhenAllTupleResult<Ts...>;
  using Indexes = std::index_sequence_for<Ts...>;

 public:
  explicit WhenAllTupleState(Future<Ts>&... inputs)
      : CombinatorState<Result>(sizeof...(Ts)),
        inputs_(FutureAccess::ReleaseValid(inputs, "weft::WhenAll")...) {}
  ~WhenAllTupleState() override {
    std::apply([](auto*... input) { (input->DropReference(), ...); }, inputs_);
  }

  void Start() noexcept { StartEach(Indexes{}); }

 private:
  template <std::size_t... I>
  void StartEach(std::index_sequence<I...>) noexcept {
    (this->Watch(I, *std::get<I>(inputs_)), ...);
  }

  template <class T>
  static auto TakePart(SharedState<T>* input) {
    if constexpr (std::is_void_v<T>) {
      return std::tuple<>();
    } else {
      return std::tuple<T>(std::move(input->value()));
    }
  }

  template <std::size_t... I>
  std::exception_ptr FirstException(std::index_sequence<I...>) const noexcept {
    std::exception_ptr first;
    ((first == nullptr ? (void)(first = std::get<I>(inputs_)->exception()) : (void)0),
     ...);
    return first;
  }

  template <std::size_t... I>
  Result Collect(std::index_sequence<I...>) {
    if constexpr (!std::is_void_v<Result>) {
      return std::tuple_cat(TakePart(std::get<I>(inputs_))...);
    }
  }

  Continuation* OnInputReady(std::size_t) noexcept override {
    if (!this->CountFired()) return nullptr;
    if (std::exception_ptr failure = FirstException(Indexes{})) {
      this->StoreException(std::move(failure));
      return this->PublishAndDrop();
    }
    StoreResultOf(*this, [this] { return Collect(Indexes{}); });
    return this->PublishAndDrop();
  }

  std::tuple<SharedState<Ts>*...> inputs_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_WHEN_ALL_STATE_H_
