// W4 and W5: goroutines synchronizing with each other, timed as sync_bench.cc
// times fibers and threads.
package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// runParties runs body(0) ... body(parties-1) on goroutines held at a start gate
// until all have arrived, and returns the time from the gate's opening to the
// end of the last body. Starting the goroutines and bringing them to the gate is
// not timed, as in sync_bench.cc's RunParties.
func runParties(parties int, body func(party int)) time.Duration {
	var arrived, finished sync.WaitGroup
	gate := make(chan struct{})
	running := int64(parties)
	var end time.Time // written by the last party, before finished.Done()
	arrived.Add(parties)
	finished.Add(parties)
	for i := 0; i < parties; i++ {
		go func(party int) {
			defer finished.Done()
			arrived.Done()
			<-gate
			body(party)
			if atomic.AddInt64(&running, -1) == 0 {
				end = time.Now()
			}
		}(i)
	}
	arrived.Wait()
	start := time.Now()
	close(gate)
	finished.Wait()
	return end.Sub(start)
}

// W4: two goroutines pass a token back and forth through two unbuffered
// channels; a round trip is one hand-over each way (ping, then pong). The
// goroutines run wherever the scheduler puts them, with GOMAXPROCS as set.
func measurePingPong(s sizes) ([]line, error) {
	ping := make(chan struct{})
	pong := make(chan struct{})
	elapsed := runParties(2, func(party int) {
		if party == 0 {
			for i := 0; i < s.w4N; i++ {
				ping <- struct{}{}
				<-pong
			}
		} else {
			for i := 0; i < s.w4N; i++ {
				<-ping
				pong <- struct{}{}
			}
		}
	})
	return []line{{"W4", nsPer(elapsed, s.w4N), "ns/round-trip"}}, nil
}

// W5: every goroutine increments a shared counter M times, each time under a
// shared sync.Mutex. The figure is wall time over all lock/unlock pairs.
func measureContendedMutex(s sizes) ([]line, error) {
	var mu sync.Mutex
	var counter int64
	elapsed := runParties(s.w5Goroutines, func(int) {
		for i := 0; i < s.w5M; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	})
	locks := s.w5Goroutines * s.w5M
	if counter != int64(locks) {
		return nil, fmt.Errorf("the counter is %d after %d locked increments", counter, locks)
	}
	return []line{{"W5", nsPer(elapsed, locks), "ns/lock"}}, nil
}
