// The runtime's side of the syscall hooks (hook/): the entry points a hooked C
// library call reaches once a runtime has attached, and the descriptor
// adoption they share with weft::io.
//
// Each entry point decides per call:
// - a descriptor weft already made non-blocking (kernel O_NONBLOCK set behind
//   the user's back) whose user wants blocking calls goes through weft::io,
//   from a fiber (which parks) and from a plain thread (which blocks, as the C
//   library would have), with SO_RCVTIMEO / SO_SNDTIMEO as the deadline;
// - a socket, pipe or eventfd weft has not seen yet, used by a fiber, is
//   adopted first (made non-blocking, registered; the user's mode and
//   timeouts recorded as the user's view) and then treated as above;
// - everything else (plain threads on descriptors weft never touched, regular
//   files, terminals, devices, descriptors the user made non-blocking) goes to
//   the C library.
// errno is set after the last point where the fiber may have moved to another
// worker, on the thread that returns to the caller.
#ifndef WEFT_RUNTIME_IO_DETAIL_HOOKED_CALLS_H_
#define WEFT_RUNTIME_IO_DETAIL_HOOKED_CALLS_H_

namespace weft::detail {

// Stores the runtime's entry points in the hook library's table, if a hook
// library is in the process. Idempotent; StartRuntime calls it.
void AttachHooks();

// First use of `fd` by weft (weft::io does the same on first use): checks
// that it is open, records its mode and socket timeouts as the user's view,
// makes it non-blocking and registers it with the caller's poller. 0, or an
// errno. Does nothing for a descriptor weft has open already.
int AdoptDescriptor(int fd);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_HOOKED_CALLS_H_
