// LatencyHistogram: durations recorded into log-linear buckets, for
// percentiles over millions of samples without keeping them. Each power of two
// is split into 64 buckets, so a percentile is known to within 1/64 (1.6%) of
// its value; durations below 128 ns are exact. Not thread-safe: one recorder.
#ifndef WEFT_BENCHMARK_NET_LATENCY_HISTOGRAM_H_
#define WEFT_BENCHMARK_NET_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace weft::bench::net {

class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  // Records one duration in nanoseconds; negative ones count as 0, those of
  // 2^49 ns (six days) or more in the last bucket.
  void Record(std::int64_t ns) {
    const std::uint64_t value = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    ++counts_[std::min(BucketOf(value), kBuckets - 1)];
    ++count_;
    max_ = std::max(max_, value);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t max_ns() const { return max_; }

  // The nearest-rank percentile `p` (0 < p <= 100) in nanoseconds: the middle
  // of the bucket holding the smallest sample that at least p% of the samples
  // do not exceed, capped at the largest sample. 0 when nothing was recorded.
  double PercentileNs(double p) const {
    if (count_ == 0) return 0;
    auto rank =
        static_cast<std::uint64_t>(std::ceil(p / 100 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
      seen += counts_[bucket];
      if (seen >= rank) {
        const double middle = (static_cast<double>(LowestOf(bucket)) +
                               static_cast<double>(LowestOf(bucket + 1)) - 1) /
                              2;
        return std::min(middle, static_cast<double>(max_));
      }
    }
    return static_cast<double>(max_);
  }

 private:
  static constexpr int kSubBucketBits = 6;
  static constexpr std::uint64_t kSubBuckets = 1u << kSubBucketBits;  // per power of two
  static constexpr std::size_t kBuckets = 44 * kSubBuckets;

  // Values below 2 * kSubBuckets have a bucket each; above, the bucket of a
  // value whose highest bit is b is one of the kSubBuckets of [2^b, 2^(b+1)).
  static std::size_t BucketOf(std::uint64_t value) {
    if (value < 2 * kSubBuckets) return static_cast<std::size_t>(value);
    const int highest = 63 - __builtin_clzll(value);
    const int shift = highest - kSubBucketBits;
    return static_cast<std::size_t>((shift + 1) * kSubBuckets +
                                    ((value >> shift) - kSubBuckets));
  }

  // The smallest value of `bucket` (the inverse of BucketOf).
  static std::uint64_t LowestOf(std::size_t bucket) {
    if (bucket < 2 * kSubBuckets) return bucket;
    const std::uint64_t shift = bucket / kSubBuckets - 1;
    return (bucket % kSubBuckets + kSubBuckets) << shift;
  }

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace weft::bench::net

#endif  // WEFT_BENCHMARK_NET_LATENCY_HISTOGRAM_H_
