// weft_file_bench: random 4 KiB reads by 256 fibers (weft::io::PRead) from a
// file in the page cache, and with O_DIRECT where the file system allows it,
// for each file engine (the workers' io_uring, and the blocking pool that
// --weft_io_engine=epoll selects), against fio at the same queue depth
// (io_uring with iodepth=256, and psync with 256 threads). Prints IOPS and the
// 99th percentile latency of each.
//
//   weft_file_bench [--quick] [--file_mib=1024] [--seconds=5] [--fibers=256]
//                   [--dir=/tmp] [--fio=fio] [--weft_...]
#include <fcntl.h>
#include <gflags/gflags.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/bench_main.h"
#include "runtime/fiber.h"
#include "runtime/io/file.h"
#include "runtime/runtime.h"

DEFINE_uint64(file_mib, 1024, "Size of the file read, in MiB (--quick: 64).");
DEFINE_uint64(seconds, 5, "Seconds per measurement (--quick: 2).");
DEFINE_uint64(fibers, 256, "Fibers reading at once, and fio's queue depth.");
DEFINE_string(dir, "/tmp", "Where the temporary directory with the file is made.");
DEFINE_string(fio, "fio", "The fio program; empty: do not run fio.");

namespace {

constexpr std::size_t kBlock = 4096;

struct Result {
  std::string name;
  double iops = 0;
  double p99_us = 0;
  // CPU the idle process used per second right after the run, rings alive.
  double idle_cpu_ms_per_s = -1;
  std::string note;  // instead of figures: why the row is missing
};

// A file of `bytes` in a new temporary directory, both removed at the end.
class BenchFile {
 public:
  BenchFile(const std::string& dir, std::size_t bytes) : bytes_(bytes) {
    std::string pattern = dir + "/weft_file_bench_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("weft_file_bench: mkdtemp");
      std::exit(1);
    }
    dir_ = pattern;
    path_ = dir_ + "/data";
    const int fd = open(path_.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    std::vector<char> chunk(1 << 20);
    std::mt19937_64 random(42);
    for (std::size_t done = 0; fd >= 0 && done < bytes; done += chunk.size()) {
      for (char& c : chunk) c = static_cast<char>(random());
      if (pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(done)) !=
          static_cast<ssize_t>(chunk.size())) {
        std::perror("weft_file_bench: writing the file");
        std::exit(1);
      }
    }
    if (fd < 0 || fsync(fd) != 0) {
      std::perror("weft_file_bench: creating the file");
      std::exit(1);
    }
    close(fd);
  }
  ~BenchFile() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
  std::string dir_;
  std::string path_;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double Percentile99(std::vector<std::uint32_t>& ns) {
  if (ns.empty()) return 0;
  const std::size_t at = ns.size() * 99 / 100;
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(at), ns.end());
  return ns[at] / 1000.0;
}

// `fibers` fibers read random blocks of `fd` for `seconds` under a runtime
// whose file engine is `engine`.
Result RunWeft(const std::string& name, const std::string& engine, int fd,
               std::size_t file_bytes) {
  weft::RuntimeOptions options = weft::RuntimeOptions::FromFlags();
  options.io_engine = engine;
  weft::Runtime runtime(options);
  const std::size_t blocks = file_bytes / kBlock;
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::vector<std::uint32_t>> latencies(FLAGS_fibers);
  std::vector<weft::Fiber> fibers;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t f = 0; f < FLAGS_fibers; ++f) {
    fibers.emplace_back([&, f] {
      // Aligned for O_DIRECT.
      std::unique_ptr<char, decltype(&std::free)> buf(
          static_cast<char*>(std::aligned_alloc(kBlock, kBlock)), &std::free);
      std::mt19937_64 random(f + 1);
      auto& mine = latencies[f];
      mine.reserve(1 << 16);
      while (!stop.load(std::memory_order_relaxed)) {
        const off_t offset = static_cast<off_t>(random() % blocks * kBlock);
        const auto t0 = std::chrono::steady_clock::now();
        if (weft::io::PRead(fd, buf.get(), kBlock, offset) != kBlock) {
          errors.fetch_add(1);
          return;
        }
        mine.push_back(static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now() - t0)
                .count()));
      }
    });
  }
  // A plain thread's sleep: it times the run, it synchronizes nothing.
  usleep(static_cast<useconds_t>(FLAGS_seconds * 1'000'000));
  stop.store(true);
  for (weft::Fiber& fiber : fibers) fiber.Join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Result result;
  result.name = name;
  // Idle with the rings (and their eventfds in the pollers) in place.
  const double cpu_before = CpuSeconds();
  usleep(1'000'000);
  result.idle_cpu_ms_per_s = (CpuSeconds() - cpu_before) * 1000;
  if (errors.load() != 0) {
    result.note = "reads failed";
    return result;
  }
  std::vector<std::uint32_t> all;
  for (auto& mine : latencies) all.insert(all.end(), mine.begin(), mine.end());
  result.iops = all.size() / elapsed;
  result.p99_us = Percentile99(all);
  return result;
}

// The number after `"key" : ` at or after `from` in fio's JSON output.
double JsonNumber(const std::string& json, const std::string& key, std::size_t from) {
  const std::size_t at = json.find("\"" + key + "\" :", from);
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + key.size() + 4, nullptr);
}

Result RunFio(const std::string& name, const std::string& path, std::size_t bytes,
              const std::string& engine_args, bool direct) {
  Result result;
  result.name = name;
  const std::string command =
      FLAGS_fio + " --name=randread --filename=" + path +
      " --rw=randread --bs=4k --size=" + std::to_string(bytes) +
      " --invalidate=0 --time_based --runtime=" + std::to_string(FLAGS_seconds) +
      " --direct=" + (direct ? "1" : "0") + " " + engine_args +
      " --output-format=json 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string json;
  char chunk[4096];
  for (std::size_t n;
       pipe != nullptr && (n = fread(chunk, 1, sizeof(chunk), pipe)) > 0;) {
    json.append(chunk, n);
  }
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  const std::size_t read = json.find("\"read\" :");
  if (status != 0 || read == std::string::npos) {
    result.note = "fio failed or is missing (" + FLAGS_fio + ")";
    return result;
  }
  result.iops = JsonNumber(json, "iops", read);
  const std::size_t clat = json.find("\"clat_ns\" :", read);
  result.p99_us = JsonNumber(json, "99.000000", clat) / 1000.0;
  return result;
}

int Run(const weft::bench::Mode& mode) {
  if (mode.quick && gflags::GetCommandLineFlagInfoOrDie("file_mib").is_default) {
    FLAGS_file_mib = 64;
  }
  if (mode.quick && gflags::GetCommandLineFlagInfoOrDie("seconds").is_default) {
    FLAGS_seconds = 2;
  }
  if (FLAGS_file_mib == 0 || FLAGS_fibers == 0 || FLAGS_seconds == 0) {
    std::fprintf(stderr,
                 "weft_file_bench: --file_mib, --fibers, --seconds must be > 0\n");
    return 2;
  }
  BenchFile file(FLAGS_dir, FLAGS_file_mib << 20);
  std::printf(
      "weft_file_bench: random 4 KiB reads of a %llu MiB file (%s), %llu fibers "
      "/ queue depth, %llu s each\n",
      static_cast<unsigned long long>(FLAGS_file_mib), file.path().c_str(),
      static_cast<unsigned long long>(FLAGS_fibers),
      static_cast<unsigned long long>(FLAGS_seconds));
  std::fflush(stdout);
  std::vector<Result> results;
  const int cached = open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  results.push_back(
      RunWeft("weft io_uring (page cache)", "io_uring", cached, file.bytes()));
  results.push_back(
      RunWeft("weft blocking pool (page cache)", "epoll", cached, file.bytes()));
  close(cached);
  const std::string depth = std::to_string(FLAGS_fibers);
  const std::string fio_uring = "--ioengine=io_uring --iodepth=" + depth;
  const std::string fio_psync =
      "--ioengine=psync --thread --group_reporting --numjobs=" + depth;
  if (!FLAGS_fio.empty()) {
    results.push_back(RunFio("fio io_uring iodepth=" + depth + " (page cache)",
                             file.path(), file.bytes(), fio_uring, false));
    results.push_back(RunFio("fio psync " + depth + " threads (page cache)", file.path(),
                             file.bytes(), fio_psync, false));
  }
  // O_DIRECT: refused by some file systems (tmpfs: EINVAL).
  const int direct = open(file.path().c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  void* probe = std::aligned_alloc(kBlock, kBlock);
  if (direct < 0 || pread(direct, probe, kBlock, 0) != static_cast<ssize_t>(kBlock)) {
    std::printf("O_DIRECT: skipped, the file system under %s refuses it (%s)\n",
                FLAGS_dir.c_str(), std::strerror(errno));
  } else {
    results.push_back(
        RunWeft("weft io_uring (O_DIRECT)", "io_uring", direct, file.bytes()));
    results.push_back(
        RunWeft("weft blocking pool (O_DIRECT)", "epoll", direct, file.bytes()));
    if (!FLAGS_fio.empty()) {
      results.push_back(RunFio("fio io_uring iodepth=" + depth + " (O_DIRECT)",
                               file.path(), file.bytes(), fio_uring, true));
      results.push_back(RunFio("fio psync " + depth + " threads (O_DIRECT)", file.path(),
                               file.bytes(), fio_psync, true));
    }
  }
  std::free(probe);
  if (direct >= 0) close(direct);
  std::printf("%-44s %12s %12s %16s\n", "reader", "IOPS", "p99 (us)", "idle CPU ms/s");
  for (const Result& r : results) {
    if (!r.note.empty()) {
      std::printf("%-44s %s\n", r.name.c_str(), r.note.c_str());
    } else if (r.idle_cpu_ms_per_s >= 0) {
      std::printf("%-44s %12.0f %12.1f %16.2f\n", r.name.c_str(), r.iops, r.p99_us,
                  r.idle_cpu_ms_per_s);
    } else {
      std::printf("%-44s %12.0f %12.1f %16s\n", r.name.c_str(), r.iops, r.p99_us, "");
    }
  }
  std::printf(
      "weft: latency of each PRead call; fio: completion latency (clat, from "
      "submission, queueing at depth %llu included)\n",
      static_cast<unsigned long long>(FLAGS_fibers));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_file_bench: random 4 KiB reads by fibers (weft::io::PRead) from a file in "
      "the page cache and with O_DIRECT, through the workers' io_uring and through the "
      "blocking pool, against fio (io_uring at the same queue depth, psync with as "
      "many threads): IOPS and p99 latency.\n";
  program.quick = "a 64 MiB file and 2 s per measurement";
  program.runtime_flags = "; io_engine is set per measurement";
  program.own_flags =
      "  [--file_mib=1024] [--seconds=5] [--fibers=256] [--dir=/tmp] [--fio=fio]\n"
      "          file size, time per measurement, readers / queue depth, where the\n"
      "          file goes, the fio program (empty: skip fio)\n";
  program.google_benchmark = false;
  return weft::bench::Main(program, argc, argv, Run);
}
