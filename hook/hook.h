// libweft_hook: unmodified blocking code inside fibers (opt-in).
//
// Link the program with the CMake target weft::hook (libweft_hook.so) or
// weft::hook_static, or start it with LD_PRELOAD=libweft_hook.so. Once the
// runtime has started, a fiber that calls the blocking forms of read, write,
// readv, writev, recv, send, recvfrom, sendto, recvmsg, sendmsg, accept,
// accept4, connect, poll, select, sleep, usleep, nanosleep, close,
// getaddrinfo, gethostbyname or gethostbyname_r parks itself instead of its
// worker, for every socket, pipe and eventfd, whoever made it; code in shared
// libraries and in modules loaded with dlopen included (libhiredis, libcurl).
//
// What the user sees stays what the C library would show: a descriptor the
// user made non-blocking still fails with EAGAIN, fcntl(F_GETFL) and
// ioctl(FIONBIO) report the mode the user set, SO_RCVTIMEO and SO_SNDTIMEO are
// deadlines (EAGAIN when they pass, EINPROGRESS for connect), and close wakes
// every fiber waiting on the descriptor (they fail with EBADF). Plain threads
// and regular files (terminals, directories, devices) go straight to the C
// library. docs/blocking.md ("Hooks") lists what is not hooked and why.
#ifndef WEFT_HOOK_HOOK_H_
#define WEFT_HOOK_HOOK_H_

namespace weft::hook {

// Whether the hooks are active: a hook library is in the process (linked or
// preloaded) and a runtime has attached to it (StartRuntime does). False
// before the first StartRuntime and in a program without the hook library.
// Callable from any thread; part of weft::runtime, so a program can ask
// without linking the hook.
bool Enabled();

}  // namespace weft::hook

#endif  // WEFT_HOOK_HOOK_H_
