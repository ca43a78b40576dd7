#include "runtime/detail/context.h"

#include <pthread.h>

#include <boost/context/detail/fcontext.hpp>

#include "runtime/detail/check.h"
#include "runtime/detail/sanitizers.h"

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {
namespace {

namespace bctx = boost::context::detail;

// Lives on the switcher's stack, which stays intact until the receiver has read it.
struct SwitchPacket {
  MachineContext* from;
  MachineContext* to;
  void* data;
};

inline void BeforeSwitch([[maybe_unused]] MachineContext* from,
                         [[maybe_unused]] MachineContext* to,
                         [[maybe_unused]] bool from_exits) {
#ifdef WEFT_ASAN
  __sanitizer_start_switch_fiber(from_exits ? nullptr : &from->asan_fake_stack,
                                 to->stack_low, to->stack_size);
#endif
#ifdef WEFT_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
}

inline SwitchArrival AfterSwitch(bctx::transfer_t t,
                                 [[maybe_unused]] MachineContext* self) {
  auto* packet = static_cast<SwitchPacket*>(t.data);
#ifdef WEFT_ASAN
  __sanitizer_finish_switch_fiber(self->asan_fake_stack, nullptr, nullptr);
#endif
  packet->from->fctx = t.fctx;
  return SwitchArrival{packet->from, packet->data};
}

void EntryTrampoline(bctx::transfer_t t) {
  MachineContext* self = static_cast<SwitchPacket*>(t.data)->to;
  self->asan_fake_stack = nullptr;
  SwitchArrival arrival = AfterSwitch(t, self);
  self->entry(arrival);
  FatalError("a fiber context entry function returned");
}

}  // namespace

void MakeContext(MachineContext* ctx, void* stack_low, void* stack_top,
                 ContextEntry entry) {
  std::size_t size = static_cast<char*>(stack_top) - static_cast<char*>(stack_low);
  ctx->entry = entry;
  ctx->stack_low = stack_low;
  ctx->stack_size = size;
  ctx->asan_fake_stack = nullptr;
  ctx->fctx = bctx::make_fcontext(stack_top, size, &EntryTrampoline);
#ifdef WEFT_ASAN
  // A pooled stack may still carry poison from frames of its previous fiber.
  __asan_unpoison_memory_region(stack_low, size);
#endif
#ifdef WEFT_TSAN
  ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void AdoptThreadContext(MachineContext* ctx) {
  *ctx = MachineContext{};
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* low = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    ctx->stack_low = low;
    ctx->stack_size = size;
  }
#ifdef WEFT_TSAN
  ctx->tsan_fiber = __tsan_get_current_fiber();
#endif
}

void DestroyContext([[maybe_unused]] MachineContext* ctx) {
#ifdef WEFT_TSAN
  if (ctx->tsan_fiber != nullptr) {
    __tsan_destroy_fiber(ctx->tsan_fiber);
    ctx->tsan_fiber = nullptr;
  }
#endif
  ctx->fctx = nullptr;
}

SwitchArrival SwitchContext(MachineContext* from, MachineContext* to, void* data,
                            bool from_exits) {
  SwitchPacket packet{from, to, data};
  BeforeSwitch(from, to, from_exits);
  void* target = to->fctx;
  WEFT_DCHECK(target != nullptr) << "switching to a context that is not suspended";
  to->fctx = nullptr;
  bctx::transfer_t t = bctx::jump_fcontext(target, &packet);
  return AfterSwitch(t, from);
}

}  // namespace weft::detail
