#include "benchmark/bench_main.h"

#include <gflags/gflags.h>

#include <cstdio>
#include <cstring>

#include "benchmark/benchmark.h"

DEFINE_bool(quick, false,
            "Every workload at reduced size (the program's --help says how much)");
DEFINE_bool(smoke, false,
            "Tiny sizes that only check that every workload completes with the right "
            "answer; implies --quick");

namespace weft::bench {

namespace {

// The program Main() runs, for the help printer Google Benchmark calls (a plain
// function pointer).
const Program* current_program = nullptr;

bool StartsWith(const char* text, const char* prefix) {
  return std::strncmp(text, prefix, std::strlen(prefix)) == 0;
}

// The program's part of the help, after Google Benchmark's.
void PrintProgramFlags(const Program& program) {
  if (program.quick != nullptr) std::printf("  [--quick]\n          %s\n", program.quick);
  if (program.smoke != nullptr) std::printf("  [--smoke]\n          %s\n", program.smoke);
  if (program.own_flags != nullptr) std::fputs(program.own_flags, stdout);
  if (program.runtime_flags != nullptr) {
    std::printf(
        "  [--weft_...=...]\n          weft's runtime flags (runtime/flags.cc)%s\n",
        program.runtime_flags);
  }
}

void PrintHelp() {
  std::printf("%s\n", current_program->about);
  if (current_program->google_benchmark) ::benchmark::PrintDefaultHelp();
  PrintProgramFlags(*current_program);
}

// Whether the flag `name` was given although `description` (the program's) says
// it takes no such flag; if so, says so.
bool GivenButNotTaken(const char* argv0, const char* name, const char* description) {
  if (description != nullptr || gflags::GetCommandLineFlagInfoOrDie(name).is_default) {
    return false;
  }
  std::fprintf(stderr, "%s: error: unrecognized command-line flag: --%s\n", argv0, name);
  return true;
}

}  // namespace

int Main(const Program& program, int argc, char** argv,
         const std::function<int(const Mode&)>& body) {
  current_program = &program;
  Mode mode;
  for (int i = 1; i < argc; ++i) {
    if (StartsWith(argv[i], "--weft_") || StartsWith(argv[i], "-weft_")) {
      if (program.runtime_flags == nullptr) {
        std::fprintf(stderr, "%s: error: unrecognized command-line flag: %s\n", argv[0],
                     argv[i]);
        return 1;
      }
      mode.runtime_flag_arguments.push_back(argv[i]);
    }
    if (!program.google_benchmark &&
        (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-help") == 0)) {
      PrintHelp();
      return 0;
    }
  }
  // Google Benchmark takes its own flags out (and answers --help); what it leaves
  // are gflags: weft's runtime flags, --quick, --smoke and the program's own.
  if (program.google_benchmark) ::benchmark::Initialize(&argc, argv, PrintHelp);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (GivenButNotTaken(argv[0], "quick", program.quick) ||
      GivenButNotTaken(argv[0], "smoke", program.smoke)) {
    return 1;
  }
  if (program.google_benchmark) {
    if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  } else {
    mode.arguments.assign(argv + 1, argv + argc);
  }
  mode.quick = FLAGS_quick || FLAGS_smoke;
  mode.smoke = FLAGS_smoke;

  const int status = body(mode);
  if (program.google_benchmark) ::benchmark::Shutdown();
  return status;
}

}  // namespace weft::bench
