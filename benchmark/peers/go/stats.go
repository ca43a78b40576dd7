package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// median of values (the mean of the middle two for an even count, as Google
// Benchmark's median aggregate on the C++ side). Does not modify values.
func median(values []float64) float64 {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted:
// the smallest sample that at least p% of the samples do not exceed.
func percentile(sorted []float64, p float64) float64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func nsPer(elapsed time.Duration, operations int) float64 {
	return float64(elapsed.Nanoseconds()) / float64(operations)
}

func microseconds(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func milliseconds(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// formatNumber keeps three significant digits, as showcase_main.cc's
// FormatNumber does: enough for a noisy machine.
func formatNumber(value float64) string {
	switch {
	case value < 10:
		return fmt.Sprintf("%.2f", value)
	case value < 100:
		return fmt.Sprintf("%.1f", value)
	default:
		return fmt.Sprintf("%.0f", value)
	}
}
