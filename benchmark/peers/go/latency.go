// W6 and W9: latencies, taken sample by sample.
package main

import (
	"fmt"
	"math/rand"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// w6IdleGap separates W6's samples: long enough for every P to find nothing to
// do and its thread to go to sleep, so that each sample wakes an idle runtime.
const w6IdleGap = time.Millisecond

// w6ShortGap separates W6-100us's samples: a thread that ran the previous
// sample may still be spinning, or just going to sleep.
const w6ShortGap = 100 * time.Microsecond

// wokenAt carries the time at which a W6 goroutine first ran. A package-level
// channel and a top-level function keep a closure allocation out of the timed
// path, as in spawn.go.
var wokenAt = make(chan time.Time, 1)

func stampWakeUp() { wokenAt <- time.Now() }

// W6: a goroutine locked to its OS thread (the analogue of a plain thread)
// sleeps, then starts a goroutine; a sample is the time from just before the go
// statement to the new goroutine's first instruction, on the monotonic clock.
func measureWakeUp(s sizes) ([]line, error) {
	return measureWakeUpEvery(s, w6IdleGap, "W6")
}

// W6-100us: the same with samples w6ShortGap apart.
func measureWakeUpShortGap(s sizes) ([]line, error) {
	return measureWakeUpEvery(s, w6ShortGap, "W6-100us")
}

// measureWakeUpEvery takes W6's samples `gap` apart and names its figures
// <id>-p50 and <id>-p99.
func measureWakeUpEvery(s sizes, gap time.Duration, id string) ([]line, error) {
	done := make(chan []float64)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		latencies := make([]float64, s.w6Samples)
		for i := range latencies {
			time.Sleep(gap)
			start := time.Now()
			go stampWakeUp()
			latencies[i] = microseconds((<-wokenAt).Sub(start))
		}
		done <- latencies
	}()
	latencies := <-done
	sort.Float64s(latencies)
	return []line{
		{id + "-p50", percentile(latencies, 50), "us"},
		{id + "-p99", percentile(latencies, 99), "us"},
	}, nil
}

// w9SeedBase + i seeds request i's sleeps: every run draws the same sleeps.
const w9SeedBase = 1

// drawNaps returns the sleeps of every request, `sleeps` consecutive ones per
// request, exponentially distributed with mean meanUS µs (the gaps of a Poisson
// process). They are drawn before the clock starts: math/rand's generator has 5
// KB of state and a costly seeding, which are not the runtime's work. Reseeding
// one generator per request gives the sequence a fresh one would.
func drawNaps(requests, sleeps int, meanUS float64) []time.Duration {
	naps := make([]time.Duration, requests*sleeps)
	rng := rand.New(rand.NewSource(w9SeedBase))
	for i := 0; i < requests; i++ {
		rng.Seed(w9SeedBase + int64(i))
		for j := 0; j < sleeps; j++ {
			naps[i*sleeps+j] = time.Duration(rng.ExpFloat64() * meanUS * 1e3)
		}
	}
	return naps
}

// W9: all requests start at once, each on its own goroutine; a request sleeps
// its naps in turn and after each takes a shared sync.Mutex to increment a
// counter. A request's latency runs from just before its go statement to its
// end, so it includes waiting for a P. Throughput is requests over the time from
// the first go statement to the last request's end.
func measureFanOut(s sizes) ([]line, error) {
	naps := drawNaps(s.w9Requests, s.w9Sleeps, s.w9MeanSleepUS)
	var mu sync.Mutex
	var counter int64
	latencies := make([]float64, s.w9Requests)
	ends := make([]time.Time, s.w9Requests)
	var finished sync.WaitGroup
	finished.Add(s.w9Requests)
	first := time.Now()
	for i := 0; i < s.w9Requests; i++ {
		go func(i int, start time.Time) {
			defer finished.Done()
			for _, nap := range naps[i*s.w9Sleeps : (i+1)*s.w9Sleeps] {
				time.Sleep(nap)
				mu.Lock()
				counter++
				mu.Unlock()
			}
			ends[i] = time.Now()
			latencies[i] = microseconds(ends[i].Sub(start))
		}(i, time.Now())
	}
	finished.Wait()

	if want := int64(s.w9Requests * s.w9Sleeps); counter != want {
		return nil, fmt.Errorf("the counter is %d after %d locked increments", counter, want)
	}
	last := first
	for _, end := range ends {
		if end.After(last) {
			last = end
		}
	}
	sort.Float64s(latencies)
	return []line{
		{"W9-throughput", float64(s.w9Requests) / last.Sub(first).Seconds(), "req/s"},
		{"W9-p99", percentile(latencies, 99), "us"},
	}, nil
}

// W9-cold: W9's first run in a fresh process (an isolated workload: each
// repetition runs in a child of its own, with no warm-up), its figures named
// W9-cold-throughput and W9-cold-p99.
func measureFanOutCold(s sizes) ([]line, error) {
	figures, err := measureFanOut(s)
	if err != nil {
		return nil, err
	}
	for i := range figures {
		figures[i].id = strings.Replace(figures[i].id, "W9-", "W9-cold-", 1)
	}
	return figures, nil
}
