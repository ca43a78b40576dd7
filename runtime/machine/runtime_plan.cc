#include "runtime/machine/runtime_plan.h"

#include <errno.h>

#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "runtime/detail/scheduling_policies.h"

namespace weft::detail {
namespace {

void CheckRange(const char* option, const char* flag, std::size_t value, std::size_t low,
                std::size_t high, const char* meaning = "") {
  if (value < low || value > high) {
    // A negative number stored into the unsigned field arrives this large.
    const bool wrapped = value > std::numeric_limits<std::size_t>::max() / 2;
    throw std::invalid_argument(
        std::string("weft: RuntimeOptions::") + option + " (--" + flag + ") is " +
        (wrapped ? "negative (" + std::to_string(value) + " as unsigned)"
                 : std::to_string(value)) +
        "; accepted range is " + std::to_string(low) + ".." + std::to_string(high) +
        meaning + "; set it within that range");
  }
}

// Every option's own range; the layout is checked by PlanRuntime.
void ValidateOptionRanges(const RuntimeOptions& options) {
  CheckRange("concurrency_hint", "weft_concurrency_hint", options.concurrency_hint, 0,
             1024, " (0 = one worker per accessible CPU)");
  if (options.scheduling_group_size != 0) {
    CheckRange("scheduling_group_size", "weft_scheduling_group_size",
               options.scheduling_group_size, 1, 64, ", or 0 for automatic");
  }
  CheckRange("stats_log_interval_ms", "weft_stats_log_interval_ms",
             options.stats_log_interval_ms, 0, 86'400'000, " (0 = never)");
  CheckRange("run_queue_size", "weft_fiber_run_queue_size", options.run_queue_size, 2,
             std::size_t{1} << 24, ", a power of two");
  if ((options.run_queue_size & (options.run_queue_size - 1)) != 0) {
    throw std::invalid_argument(
        "weft: RuntimeOptions::run_queue_size "
        "(--weft_fiber_run_queue_size) is " +
        std::to_string(options.run_queue_size) +
        "; it must be a power of two in 2..16777216");
  }
  CheckRange("stack_size", "weft_fiber_stack_size", options.stack_size, 16384,
             std::size_t{1} << 30, " bytes");
  CheckRange("hibernate_parked_fibers_after_ms", "weft_fiber_hibernate_after_ms",
             options.hibernate_parked_fibers_after_ms, 0, 86'400'000, " ms (0 = never)");
  CheckRange("blocking_pool_max_threads", "weft_blocking_pool_max_threads",
             options.blocking_pool_max_threads, 1, 4096,
             " threads (the pool needs at least one; each is a plain thread with its own "
             "stack)");
  CheckRange("blocking_pool_idle_timeout_ms", "weft_blocking_pool_idle_timeout_ms",
             options.blocking_pool_idle_timeout_ms, 1, 86'400'000, " ms");
  CheckRange("resolve_cache_ttl_ms", "weft_resolve_cache_ttl_ms",
             options.resolve_cache_ttl_ms, 0, 86'400'000, " ms (0 = no cache)");
  if (options.io_engine != "auto" && options.io_engine != "epoll" &&
      options.io_engine != "io_uring") {
    throw std::invalid_argument(
        "weft: RuntimeOptions::io_engine (--weft_io_engine) is \"" + options.io_engine +
        "\"; accepted values are \"auto\", \"epoll\" and \"io_uring\"");
  }
  CheckRange("io_uring_entries", "weft_io_uring_entries", options.io_uring_entries, 2,
             32768, ", a power of two");
  if ((options.io_uring_entries & (options.io_uring_entries - 1)) != 0) {
    throw std::invalid_argument(
        "weft: RuntimeOptions::io_uring_entries (--weft_io_uring_entries) is " +
        std::to_string(options.io_uring_entries) +
        "; it must be a power of two in 2..32768");
  }
}

// WEFT_CHAOS_MIGRATION: unset, empty, 0 or false leave chaos mode to the
// options; 1 or true turn it on.
bool ChaosMigrationFromEnvironment() {
  const char* value = std::getenv("WEFT_CHAOS_MIGRATION");
  if (value == nullptr) return false;
  const std::string text = value;
  if (text.empty() || text == "0" || text == "false") return false;
  if (text == "1" || text == "true") return true;
  throw std::invalid_argument(
      "weft: the environment variable WEFT_CHAOS_MIGRATION is \"" + text +
      "\"; set it to 1 or true to turn chaos migration on for every runtime, or to 0, "
      "false or nothing to leave it to RuntimeOptions::chaos_migration "
      "(--weft_chaos_migration)");
}

// RuntimeOptions::scheduling_policy (checked whatever the environment says),
// unless WEFT_SCHEDULING_POLICY names one.
std::string SchedulingPolicy(const RuntimeOptions& options) {
  if (!IsSchedulingPolicy(options.scheduling_policy)) {
    throw std::invalid_argument(
        "weft: RuntimeOptions::scheduling_policy (--weft_scheduling_policy) is \"" +
        options.scheduling_policy + "\"; accepted: " + SchedulingPolicyList());
  }
  const char* value = std::getenv("WEFT_SCHEDULING_POLICY");
  if (value == nullptr || *value == '\0') return options.scheduling_policy;
  if (!IsSchedulingPolicy(value)) {
    throw std::invalid_argument(
        std::string("weft: the environment variable WEFT_SCHEDULING_POLICY is \"") + value +
        "\"; set it to one of " + SchedulingPolicyList() +
        ", or unset it to leave the choice to RuntimeOptions::scheduling_policy "
        "(--weft_scheduling_policy)");
  }
  return value;
}

// RuntimeOptions::io_engine (checked already), unless WEFT_IO_ENGINE names
// one: how the test suite runs every weft::io test with each engine.
std::string IoEngine(const RuntimeOptions& options) {
  const char* value = std::getenv("WEFT_IO_ENGINE");
  if (value == nullptr || *value == '\0') return options.io_engine;
  const std::string text = value;
  if (text != "auto" && text != "epoll" && text != "io_uring") {
    throw std::invalid_argument(
        "weft: the environment variable WEFT_IO_ENGINE is \"" + text +
        "\"; set it to \"auto\", \"epoll\" or \"io_uring\", or unset it to leave the "
        "choice to RuntimeOptions::io_engine (--weft_io_engine)");
  }
  return text;
}

// RuntimeOptions::hibernate_parked_fibers_after_ms, unless
// WEFT_HIBERNATE_AFTER_MS gives a number of milliseconds: how the test suite
// runs with every fiber parked for long hibernating.
std::size_t HibernateAfterMs(const RuntimeOptions& options) {
  const char* value = std::getenv("WEFT_HIBERNATE_AFTER_MS");
  if (value == nullptr || *value == '\0') return options.hibernate_parked_fibers_after_ms;
  char* end = nullptr;
  errno = 0;
  const unsigned long long ms = std::strtoull(value, &end, 10);
  if (*end != '\0' || errno != 0 || ms > 86'400'000 || *value == '-') {
    throw std::invalid_argument(
        std::string("weft: the environment variable WEFT_HIBERNATE_AFTER_MS is \"") + value +
        "\"; set it to a number of milliseconds in 0..86400000 (0 = never), or unset it "
        "to leave it to RuntimeOptions::hibernate_parked_fibers_after_ms "
        "(--weft_fiber_hibernate_after_ms)");
  }
  return static_cast<std::size_t>(ms);
}

// Whether WEFT_IO_URING_MULTISHOT leaves multishot accepts and receives on
// (unset or "1") or turns them off ("0").
bool IoUringMultishot() {
  const char* value = std::getenv("WEFT_IO_URING_MULTISHOT");
  if (value == nullptr || *value == '\0') return true;
  const std::string text = value;
  if (text != "0" && text != "1") {
    throw std::invalid_argument(
        "weft: the environment variable WEFT_IO_URING_MULTISHOT is \"" + text +
        "\"; set it to \"0\" (one io_uring request per socket call) or \"1\" "
        "(multishot accepts and receives, the default), or unset it");
  }
  return text == "1";
}

}  // namespace

RuntimePlan PlanRuntime(const RuntimeOptions& options) {
  ValidateOptionRanges(options);
  // Parses topology and accessible_cpus and checks that the layout can be made.
  RuntimePlan plan;
  plan.layout = DiscoverCpus(options);
  plan.groups = PlanGroups(options, plan.layout);
  plan.chaos_migration = options.chaos_migration || ChaosMigrationFromEnvironment();
  plan.scheduling_policy = SchedulingPolicy(options);
  plan.io_engine = IoEngine(options);
  plan.hibernate_after_ms = HibernateAfterMs(options);
  plan.io_uring_multishot = IoUringMultishot();
  return plan;
}

}  // namespace weft::detail
