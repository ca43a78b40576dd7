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
using context_internal::SwitchPacket;

void EntryTrampoline(bctx::transfer_t t) {
  auto* packet = static_cast<SwitchPacket*>(t.data);
  MachineContext* self = packet->to;
#ifdef WEFT_ASAN
  self->asan_fake_stack = nullptr;
#endif
  context_internal::AfterSwitch(self);
  packet->from->fctx = t.fctx;
  self->entry(SwitchArrival{packet->from, packet->data});
  FatalError("a fiber context entry function returned");
}

}  // namespace

void MakeContext(MachineContext* ctx, void* stack_low, void* stack_top,
                 ContextEntry entry) {
  std::size_t size = static_cast<char*>(stack_top) - static_cast<char*>(stack_low);
  ctx->entry = entry;
#ifdef WEFT_ASAN
  ctx->stack_low = stack_low;
  ctx->stack_size = size;
  ctx->asan_fake_stack = nullptr;
#endif
  ctx->fctx = bctx::make_fcontext(stack_top, size, &EntryTrampoline);
#ifdef WEFT_TSAN
  ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
}

void AdoptThreadContext(MachineContext* ctx) {
  *ctx = MachineContext{};
#ifdef WEFT_ASAN
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* low = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    ctx->stack_low = low;
    ctx->stack_size = size;
  }
#endif
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

}  // namespace weft::detail
