// The four ways a program gets the hooks, one executable each (the same
// source): LD_PRELOAD of libweft_hook.so into a program that links weft
// statically, linking weft::hook (shared), linking weft::hook_static, and in
// each of them the calls of a shared library linked at build time and of a
// module loaded with dlopen. In every case exactly one runtime, the program's,
// serves the hooked calls.
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hook/hook.h"
#include "runtime/detail/libc.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/hook/hook_test_util.h"
#include "test/test_util.h"

extern "C" ssize_t weft_probe_library_read(int fd, char* byte);

namespace weft {
namespace {

using testing::AWorkerIsFree;
using testing::PollUntil;
using testing::TwoWorkers;

using ReadOne = ssize_t (*)(int fd, char* byte);

ssize_t ProgramRead(int fd, char* byte) { return read(fd, byte, 1); }

// Six fibers on two workers block reading pipes through `read_one`; another
// fiber still runs; each read gets its byte once written.
void ExpectReadsPark(ReadOne read_one) {
  Runtime runtime(TwoWorkers());
  ASSERT_TRUE(hook::Enabled()) << "the hooks are not active in this link mode ("
                               << WEFT_LINK_MODE << ")";
  constexpr int kFibers = 6;
  std::vector<int> read_ends, write_ends;
  for (int i = 0; i < kFibers; ++i) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    read_ends.push_back(fds[0]);
    write_ends.push_back(fds[1]);
  }
  std::atomic<int> got{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    fibers.emplace_back([&, i] {
      char byte = 0;
      if (read_one(read_ends[i], &byte) == 1 && byte == 'k') got.fetch_add(1);
    });
  }
  ASSERT_TRUE(PollUntil(
      [&] {
        for (int fd : read_ends) {
          if (detail::WaitersOn(fd) != 1) return false;
        }
        return true;
      },
      "every reader to park"));
  EXPECT_TRUE(AWorkerIsFree());
  for (int fd : write_ends) ASSERT_EQ(write(fd, "k", 1), 1);
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(got.load(), kFibers);
  for (int fd : read_ends) close(fd);
  for (int fd : write_ends) close(fd);
}

TEST(HookLinkMode, TheProgramsOwnCallsPark) { ExpectReadsPark(&ProgramRead); }

TEST(HookLinkMode, ASharedLibrarysCallsPark) { ExpectReadsPark(&weft_probe_library_read); }

TEST(HookLinkMode, ADlopenedModulesCallsPark) {
  void* module = dlopen(WEFT_PROBE_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(module, nullptr) << dlerror();
  auto read_one = reinterpret_cast<ReadOne>(dlsym(module, "weft_probe_module_read"));
  ASSERT_NE(read_one, nullptr) << dlerror();
  ExpectReadsPark(read_one);
  dlclose(module);
}

// The hooked calls land in the runtime that StartRuntime belongs to: the hook
// library carries no runtime of its own.
TEST(HookLinkMode, OneRuntimeServesTheHooks) {
  Runtime runtime(TwoWorkers());
  weft_hook_table* table = detail::HookTable();
  ASSERT_NE(table, nullptr);
  const weft_hook_functions* calls = table->calls.load();
  ASSERT_NE(calls, nullptr);
  Dl_info runtime_object{}, entry_object{}, hook_object{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&StartRuntime), &runtime_object), 0);
  ASSERT_NE(dladdr(reinterpret_cast<void*>(calls->read), &entry_object), 0);
  ASSERT_NE(dladdr(reinterpret_cast<void*>(table), &hook_object), 0);
  EXPECT_STREQ(entry_object.dli_fname, runtime_object.dli_fname);
  // No second runtime: the object that holds the hook table does not define
  // weft's runtime unless it is the program itself (the static form).
  if (std::string(hook_object.dli_fname) != runtime_object.dli_fname) {
    void* hook = dlopen(hook_object.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(hook, nullptr);
    EXPECT_EQ(dlsym(hook, "_ZN4weft12StartRuntimeERKNS_14RuntimeOptionsE"), nullptr)
        << hook_object.dli_fname << " holds a copy of the runtime";
    dlclose(hook);
  }
  // The C library's functions the runtime uses are not the hooked ones: they
  // are the C library's (or, under a sanitizer, its interceptor's, which
  // calls the C library).
  Dl_info real_read{};
  void* const real = reinterpret_cast<void*>(detail::Libc().read);
  ASSERT_NE(dladdr(real, &real_read), 0);
  const std::string real_object = real_read.dli_fname;
  EXPECT_NE(real, dlsym(RTLD_DEFAULT, "read")) << "the runtime's read is the hooked one";
  EXPECT_TRUE(real_object.find("libc.so") != std::string::npos ||
              real == dlsym(RTLD_DEFAULT, "__interceptor_read"))
      << real_object;
}

}  // namespace
}  // namespace weft
