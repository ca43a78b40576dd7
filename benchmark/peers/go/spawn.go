// W2a, W2b and W3: the cost of a goroutine's whole life, from the go statement
// to its end.
package main

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Go has no join: a goroutine that is waited for signals its own end. The W2
// children are top-level functions without arguments that signal through the
// package-level channel and WaitGroup below, because a closure or an argument
// makes every go statement allocate a small heap object (about 50 ns per spawn
// here), a cost of the benchmark's code rather than of the runtime. Only one
// measurement runs at a time, so sharing them is safe.
var (
	// childEnded carries the end of a W2a child to its parent. With a buffer of
	// one the child ends without waiting for its parent to receive, as a fiber
	// ends before Join collects it. Measured on the 2-core VM, this was the
	// cheapest join: about 12% below a WaitGroup's Add/Done/Wait.
	childEnded = make(chan struct{}, 1)
	// batchLeft counts down the goroutines of a W2b batch.
	batchLeft sync.WaitGroup
)

func endChild() { childEnded <- struct{}{} }

func countDown() { batchLeft.Done() }

// W2a: one goroutine at a time is started from a goroutine, which waits for its
// end before starting the next.
func measureSpawnJoin(s sizes) ([]line, error) {
	elapsed := make(chan time.Duration)
	go func() {
		start := time.Now()
		for i := 0; i < s.w2aN; i++ {
			go endChild()
			<-childEnded
		}
		elapsed <- time.Since(start)
	}()
	return []line{{"W2a", nsPer(<-elapsed, s.w2aN), "ns/spawn+join"}}, nil
}

// W2b: the main goroutine (the analogue of a plain thread) starts a batch of
// goroutines that count down a WaitGroup, then waits for the count to reach
// zero. The figure is the median over the batches of time per goroutine.
func measureSpawnBatch(s sizes) ([]line, error) {
	perGoroutine := make([]float64, s.w2bRounds)
	for r := range perGoroutine {
		start := time.Now()
		batchLeft.Add(s.w2bN)
		for i := 0; i < s.w2bN; i++ {
			go countDown()
		}
		batchLeft.Wait()
		perGoroutine[r] = nsPer(time.Since(start), s.w2bN)
	}
	return []line{{"W2b", median(perGoroutine), "ns/fiber"}}, nil
}

const skynetFanOut = 10

// skynet sends the sum of the numbers first ... first+leaves-1 to result, adding
// up one goroutine per number: a goroutine for more than one leaf starts ten
// children for a tenth of its leaves each, and sums what they send. Children send
// into a channel with room for all ten, so that each ends as soon as it has sent,
// as a fiber ends before its parent's join collects the result.
func skynet(result chan<- int64, first, leaves int64) {
	if leaves == 1 {
		result <- first
		return
	}
	children := make(chan int64, skynetFanOut)
	share := leaves / skynetFanOut
	for i := int64(0); i < skynetFanOut; i++ {
		go skynet(children, first+i*share, share)
	}
	var sum int64
	for i := 0; i < skynetFanOut; i++ {
		sum += <-children
	}
	result <- sum
}

// W3: the whole skynet tree, timed from the root's go statement to its result.
func measureSkynet(s sizes) ([]line, error) {
	result := make(chan int64, 1)
	start := time.Now()
	go skynet(result, 0, s.w3Leaves)
	sum := <-result
	elapsed := time.Since(start)
	if want := s.w3Leaves * (s.w3Leaves - 1) / 2; sum != want {
		return nil, fmt.Errorf("skynet over %d leaves summed to %d; the answer is %d",
			s.w3Leaves, sum, want)
	}
	return []line{{"W3", milliseconds(elapsed), "ms"}}, nil
}

// W3-cold: the first skynet tree in a fresh process (an isolated workload: each
// repetition runs in a child of its own, with no warm-up), and the process's
// peak resident memory at its end (getrusage's ru_maxrss, in MiB), as the C++
// side's child reports them.
func measureSkynetCold(s sizes) ([]line, error) {
	figures, err := measureSkynet(s)
	if err != nil {
		return nil, err
	}
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return nil, fmt.Errorf("getrusage: %w", err)
	}
	return []line{
		{"W3-cold", figures[0].value, "ms"},
		{"W3-cold-rss", float64(usage.Maxrss) / 1024, "MiB"},
	}, nil
}
