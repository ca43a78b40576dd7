// C1-C5: goroutines contending for one primitive, the Go side of
// benchmark/contention_bench.cc, with the same shapes, sizes and checks
// (benchmark/contention.h). Each measurement runs -c_batches batches, every one
// with fresh goroutines held at a start gate (runParties), and sums their times.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// batchLimit bounds one batch: a goroutine that never wakes must not hang the
// run. Go reports a deadlock of every goroutine by itself, but not one that
// leaves the runtime's own goroutines (timers, the watchdog) alive.
const batchLimit = 120 * time.Second

// watch ends the program if the returned stop function is not called within
// batchLimit.
func watch(id string) (stop func()) {
	timer := time.AfterFunc(batchLimit, func() {
		fmt.Fprintf(os.Stderr, "weft_go_peer: a batch of %s has not finished in %v; giving up\n",
			id, batchLimit)
		os.Exit(1)
	})
	return func() { timer.Stop() }
}

// measureSemaphore returns C1 with a semaphore of `permits`: a buffered channel
// of that capacity, where a send acquires a unit and a receive releases it.
// Every goroutine acquires -c_rounds times, counts the holders inside (itself
// included), yields with runtime.Gosched, uncounts and releases.
func measureSemaphore(permits int) func(s sizes) ([]line, error) {
	return func(s sizes) ([]line, error) {
		id := fmt.Sprintf("C1-sem-N%d", permits)
		var elapsed time.Duration
		var insideSum, acquisitions int64
		for b := 0; b < s.cBatches; b++ {
			stop := watch(id)
			semaphore := make(chan struct{}, permits)
			var holders int64
			sums := make([]int64, s.cContenders)
			most := make([]int64, s.cContenders)
			elapsed += runParties(s.cContenders, func(g int) {
				var sum, max int64
				for r := 0; r < s.cRounds; r++ {
					semaphore <- struct{}{}
					inside := atomic.AddInt64(&holders, 1)
					sum += inside
					if inside > max {
						max = inside
					}
					runtime.Gosched()
					atomic.AddInt64(&holders, -1)
					<-semaphore
				}
				sums[g] = sum
				most[g] = max
			})
			stop()
			if len(semaphore) != 0 {
				return nil, fmt.Errorf("the semaphore of %d permits held %d units after every release",
					permits, len(semaphore))
			}
			for g := range sums {
				if most[g] > int64(permits) {
					return nil, fmt.Errorf("%d holders were inside a semaphore of %d permits",
						most[g], permits)
				}
				insideSum += sums[g]
			}
			acquisitions += int64(s.cContenders) * int64(s.cRounds)
		}
		return []line{
			{id, nsPer(elapsed, int(acquisitions)), "ns/acquire"},
			{id + "-holders", float64(insideSum) / float64(acquisitions), "holders"},
		}, nil
	}
}

// measureSharedReaders is C2 on sync.RWMutex: operation r of goroutine g is a
// write when (g + r) % -c_write_every == 0 (an exclusive lock around a check
// that nobody else is inside); the others are reads held across a Gosched,
// counting the readers inside.
func measureSharedReaders(s sizes) ([]line, error) {
	var elapsed time.Duration
	var reads, insideSum, violations int64
	for b := 0; b < s.cBatches; b++ {
		stop := watch("C2")
		var mu sync.RWMutex
		var readers, writers int64
		elapsed += runParties(s.cContenders, func(g int) {
			var myReads, mySum, myViolations int64
			for r := 0; r < s.cRounds; r++ {
				if (g+r)%s.cWriteEvery == 0 {
					mu.Lock()
					if atomic.AddInt64(&writers, 1) != 1 || atomic.LoadInt64(&readers) != 0 {
						myViolations++
					}
					atomic.AddInt64(&writers, -1)
					mu.Unlock()
					continue
				}
				mu.RLock()
				mySum += atomic.AddInt64(&readers, 1)
				if atomic.LoadInt64(&writers) != 0 {
					myViolations++
				}
				runtime.Gosched()
				atomic.AddInt64(&readers, -1)
				mu.RUnlock()
				myReads++
			}
			atomic.AddInt64(&reads, myReads)
			atomic.AddInt64(&insideSum, mySum)
			atomic.AddInt64(&violations, myViolations)
		})
		stop()
	}
	if violations != 0 {
		return nil, fmt.Errorf("%d times a reader and a writer, or two writers, were inside at once",
			violations)
	}
	return []line{
		{"C2-shared-readers", nsPer(elapsed, int(reads)), "ns/read"},
		{"C2-shared-readers-inside", float64(insideSum) / float64(reads), "readers"},
	}, nil
}

// measureChannel is C3: half the goroutines (rounded down) each send -c_values
// distinct values into a channel of capacity -c_capacity, the last sender to
// finish closes it, and the other half receive until it is closed and drained.
// Every value must arrive exactly once.
func measureChannel(s sizes) ([]line, error) {
	producers := s.cContenders / 2
	consumers := s.cContenders - producers
	total := producers * s.cValues
	var elapsed time.Duration
	for b := 0; b < s.cBatches; b++ {
		stop := watch("C3")
		channel := make(chan int64, s.cCapacity)
		seen := make([]int32, total)
		producing := int64(producers)
		var strays int64
		elapsed += runParties(producers+consumers, func(g int) {
			if g < producers {
				for k := 0; k < s.cValues; k++ {
					channel <- int64(g)*int64(s.cValues) + int64(k)
				}
				if atomic.AddInt64(&producing, -1) == 0 {
					close(channel)
				}
				return
			}
			for value := range channel {
				if value < 0 || value >= int64(total) {
					atomic.AddInt64(&strays, 1)
					continue
				}
				atomic.AddInt32(&seen[value], 1)
			}
		})
		stop()
		var lost, repeated int
		for _, n := range seen {
			if n == 0 {
				lost++
			} else if n > 1 {
				repeated++
			}
		}
		if lost+repeated != 0 || strays != 0 {
			return nil, fmt.Errorf("of %d values, %d were lost, %d delivered twice, %d never sent were received",
				total, lost, repeated, strays)
		}
	}
	return []line{{"C3-channel-mpmc", nsPer(elapsed, total*s.cBatches), "ns/value"}}, nil
}

// measureHerd is C4 on sync.Mutex and sync.Cond: goroutine 0 notifies, the
// -c_contenders others wait. A herd: the notifier bumps a generation under the
// mutex and calls Broadcast; every waiter wakes, re-checks the generation and
// counts itself under the mutex; the last to count signals the notifier, which
// starts the next herd. The time is the notifier's, from the first bump to the
// end of the last of -c_herds herds.
func measureHerd(s sizes) ([]line, error) {
	waiters := s.cContenders
	var elapsed time.Duration
	for b := 0; b < s.cBatches; b++ {
		stop := watch("C4")
		var mu sync.Mutex
		herd := sync.NewCond(&mu)
		notifier := sync.NewCond(&mu)
		generation, checked := 0, 0
		var checks int64
		var batch time.Duration
		runParties(waiters+1, func(g int) {
			mu.Lock()
			defer mu.Unlock()
			if g == 0 {
				for checked != waiters {
					notifier.Wait()
				}
				start := time.Now()
				for h := 0; h < s.cHerds; h++ {
					checked = 0
					generation++
					herd.Broadcast()
					for checked != waiters {
						notifier.Wait()
					}
				}
				batch = time.Since(start)
				return
			}
			for h := 0; ; h++ {
				checks++
				checked++
				if checked == waiters {
					notifier.Signal()
				}
				if h == s.cHerds {
					return
				}
				for generation <= h {
					herd.Wait()
				}
			}
		})
		stop()
		if expected := int64(waiters) * int64(s.cHerds+1); checks != expected {
			return nil, fmt.Errorf("the waiters checked %d times, not %d", checks, expected)
		}
		elapsed += batch
	}
	return []line{{"C4-cv-herd", nsPer(elapsed, s.cHerds*s.cBatches), "ns/herd"}}, nil
}

// barrier is a reusable barrier of sync.Mutex and sync.Cond: Go has none.
type barrier struct {
	mu         sync.Mutex
	phaseDone  *sync.Cond
	parties    int
	arrived    int
	generation int
}

func newBarrier(parties int) *barrier {
	b := &barrier{parties: parties}
	b.phaseDone = sync.NewCond(&b.mu)
	return b
}

func (b *barrier) arriveAndWait() {
	b.mu.Lock()
	defer b.mu.Unlock()
	generation := b.generation
	b.arrived++
	if b.arrived == b.parties {
		b.arrived = 0
		b.generation++
		b.phaseDone.Broadcast()
		return
	}
	for generation == b.generation {
		b.phaseDone.Wait()
	}
}

// measureBarrier is C5: -c_contenders goroutines pass phases 0 to -c_phases of
// one barrier, each checking after a phase that every goroutine arrived at it.
// The time is goroutine 0's, from its return from phase 0 to its return from
// the last phase.
func measureBarrier(s sizes) ([]line, error) {
	parties := s.cContenders
	var elapsed time.Duration
	for b := 0; b < s.cBatches; b++ {
		stop := watch("C5")
		phases := newBarrier(parties)
		var arrivals, early int64
		var start, end time.Time
		runParties(parties, func(g int) {
			for p := 0; p <= s.cPhases; p++ {
				atomic.AddInt64(&arrivals, 1)
				phases.arriveAndWait()
				if atomic.LoadInt64(&arrivals) < int64(p+1)*int64(parties) {
					atomic.AddInt64(&early, 1)
				}
				if g == 0 && p == 0 {
					start = time.Now()
				}
			}
			if g == 0 {
				end = time.Now()
			}
		})
		stop()
		if early != 0 {
			return nil, fmt.Errorf("%d times a goroutine left a phase before every goroutine had arrived",
				early)
		}
		elapsed += end.Sub(start)
	}
	return []line{{"C5-barrier-mixed", nsPer(elapsed, s.cPhases*s.cBatches), "ns/phase"}}, nil
}
