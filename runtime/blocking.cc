#include "runtime/blocking.h"

#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

bool CallerIsFiber() { return InFiber(CurrentWorker()); }

}  // namespace weft::detail
