// The runner every benchmark program starts from: main() is one call to Main()
// with the program's description and its body,
//
//   int main(int argc, char** argv) {
//     weft::bench::Program program;
//     program.about = "weft_sync_bench: FiberSemaphore's hand-off throughput ...";
//     program.quick = "smaller batches and a shorter minimum time per measurement";
//     program.runtime_flags = "";
//     return weft::bench::Main(program, argc, argv, weft::Run);
//   }
//
// and Main() does what each of them needs before and after its own work: --quick
// and --smoke, Google Benchmark's initialization with its help extended by the
// program's, weft's --weft_* runtime flags (gflags, which
// RuntimeOptions::FromFlags() reads) and the program's own gflags, and the report
// of any argument nobody took.
#ifndef WEFT_BENCHMARK_BENCH_MAIN_H_
#define WEFT_BENCHMARK_BENCH_MAIN_H_

#include <functional>
#include <string>
#include <vector>

namespace weft::bench {

// What a program is and which of the shared flags it takes, for Main() and its
// --help. A flag whose description is null is not taken: giving it is an
// unrecognized argument.
struct Program {
  // What the program measures: the first lines of --help, ending in a newline.
  const char* about = "";
  // What --quick does in this program; null: it has no quick mode.
  const char* quick = nullptr;
  // What --smoke does (it implies --quick); null: it has no smoke mode.
  const char* smoke = nullptr;
  // What weft's --weft_* runtime flags mean here, after "weft's runtime flags
  // (runtime/flags.cc)": "" when that says it all, "; concurrency_hint is set per
  // measurement" when the workloads override some. Null: the program takes none.
  const char* runtime_flags = nullptr;
  // The program's own flags and arguments in Google Benchmark's help style,
  // "  [--go_peer=PATH]\n          also run the Go peer\n"; its flags are gflags
  // the program defines. Null: none.
  const char* own_flags = nullptr;
  // Whether the program runs Google Benchmark. One that does not (it reports its
  // own figures) takes no --benchmark_* flags, prints only its own part of the
  // help, and gets the arguments that are not flags in Mode::arguments instead of
  // having them reported as unrecognized.
  bool google_benchmark = true;
};

// The command line as Main() understood it.
struct Mode {
  // --quick or --smoke: every workload at its reduced size.
  bool quick = false;
  // --smoke: tiny sizes that only check that every workload completes.
  bool smoke = false;
  // The --weft_* arguments as given, to pass on to child processes.
  std::vector<std::string> runtime_flag_arguments;
  // The arguments that are not flags, for a program without Google Benchmark.
  std::vector<std::string> arguments;
};

// Takes the command line apart as `program` says (see the file comment), then
// runs `body` (which registers and runs its benchmarks and prints its figures)
// and returns its exit status, after shutting Google Benchmark down. Neither
// runs `body`: --help, which prints the help and ends the program with status 0,
// and an argument nobody takes, which is reported and makes Main return 1.
int Main(const Program& program, int argc, char** argv,
         const std::function<int(const Mode&)>& body);

}  // namespace weft::bench

#endif  // WEFT_BENCHMARK_BENCH_MAIN_H_
