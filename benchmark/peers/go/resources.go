// W7 and W8: what an idle runtime and parked goroutines cost the machine, CPU
// time and resident memory. Both are measured in a fresh child process per
// repetition: a process that has run other workloads keeps their traces (Go
// keeps every dead goroutine's descriptor for reuse, its heap and stack caches
// stay resident, its scavenger returns memory in the background), which would
// lower W8's figure and raise W7's.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// W7: after the scheduler has run goroutines on every P, the main goroutine
// sleeps; the figure is the process's CPU time (user + system, all threads) per
// wall second of that sleep.
func measureIdleCost(s sizes) ([]line, error) {
	warmUpScheduler()
	// Settle the warm-up's garbage now, so that the background scavenger has no
	// memory to return while the idleness is measured.
	debug.FreeOSMemory()

	cpuBefore, err := processCPUTime()
	if err != nil {
		return nil, err
	}
	wallBefore := time.Now()
	time.Sleep(time.Duration(s.w7Seconds * float64(time.Second)))
	cpuAfter, err := processCPUTime()
	if err != nil {
		return nil, err
	}
	wall := time.Since(wallBefore)
	return []line{{"W7", milliseconds(cpuAfter-cpuBefore) / wall.Seconds(), "cpu-ms/s"}}, nil
}

// warmUpScheduler starts a batch of goroutines and keeps every P busy for a
// moment, so that the runtime has started the threads it would start in use.
func warmUpScheduler() {
	batchLeft.Add(10000)
	for i := 0; i < 10000; i++ {
		go countDown()
	}
	batchLeft.Wait()
	runParties(2*runtime.GOMAXPROCS(0), func(int) {
		for i := 0; i < 1000; i++ {
			runtime.Gosched()
		}
	})
}

func processCPUTime() (time.Duration, error) {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()), nil
}

// residentBytes reads the process's resident set size from /proc/self/statm.
func residentBytes() (int64, error) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/self/statm reads %q", statm)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// parkUntilReleased is the body of a W8 goroutine: it says it is about to park,
// then parks on one channel receive until the channel is closed.
func parkUntilReleased(release <-chan struct{}, parking, released *sync.WaitGroup) {
	parking.Done()
	<-release
	released.Done()
}

// W8: the resident memory N goroutines parked on a channel receive add to the
// process, per goroutine. Both readings come after a collection that returns
// free heap pages to the kernel (debug.FreeOSMemory), so that they count live
// memory only: before, what the runtime holds anyway; after, that plus what the
// parked goroutines hold (descriptor, stack, the go statement's argument block,
// the channel wait entry).
func measureParkedMemory(s sizes) ([]line, error) {
	debug.FreeOSMemory()
	before, err := residentBytes()
	if err != nil {
		return nil, err
	}

	release := make(chan struct{})
	var parking, released sync.WaitGroup
	parking.Add(s.w8N)
	released.Add(s.w8N)
	for i := 0; i < s.w8N; i++ {
		go parkUntilReleased(release, &parking, &released)
	}
	parking.Wait()
	// A goroutine counts itself before it parks: wait for the last ones to park.
	if err := awaitParked(s.w8N, 10*time.Second); err != nil {
		close(release)
		return nil, err
	}
	// Drop awaitParked's stack records, which are garbage now.
	debug.FreeOSMemory()
	after, err := residentBytes()
	if err != nil {
		return nil, err
	}

	close(release)
	released.Wait()
	return []line{{"W8", float64(after-before) / float64(s.w8N), "bytes/fiber"}}, nil
}

// awaitParked returns once `want` goroutines are parked in parkUntilReleased's
// channel receive, as the goroutine profile shows them: runtime.gopark on top of
// the stack, parkUntilReleased below.
func awaitParked(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		parked := countParked()
		if parked >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d goroutines parked within %v", parked, want, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func countParked() int {
	records := make([]runtime.StackRecord, runtime.NumGoroutine()+64)
	n, ok := runtime.GoroutineProfile(records)
	for !ok {
		records = make([]runtime.StackRecord, n+64)
		n, ok = runtime.GoroutineProfile(records)
	}
	parked := 0
	for i := range records[:n] {
		frames := runtime.CallersFrames(records[i].Stack())
		top, more := frames.Next()
		if top.Function != "runtime.gopark" {
			continue
		}
		for more {
			var frame runtime.Frame
			frame, more = frames.Next()
			if frame.Function == "main.parkUntilReleased" {
				parked++
				break
			}
		}
	}
	return parked
}

// measureInChild runs one repetition of the isolated workload `id` in a fresh
// process of this program (-child), with the given size flags, and returns the
// figures it prints.
func measureInChild(id string, sizeFlags []string) ([]line, error) {
	executable, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program to start a child: %w", err)
	}
	cmd := exec.Command(executable, append([]string{"-child=" + id}, sizeFlags...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("child process %s -child=%s: %w", executable, id, err)
	}
	var figures []line
	for _, text := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		fields := strings.Fields(text)
		if len(fields) != 4 || fields[1] != "go" {
			return nil, fmt.Errorf("child printed %q, not `workload go value unit`", text)
		}
		value, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			return nil, fmt.Errorf("child printed %q: %w", text, err)
		}
		figures = append(figures, line{fields[0], value, fields[3]})
	}
	return figures, nil
}

// runChild is the child's side of measureInChild: it measures once and prints
// full-precision figures; the exit status says whether it succeeded.
func runChild(id string, s sizes) int {
	for _, w := range workloads {
		if w.id != id {
			continue
		}
		figures, err := w.measure(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "weft_go_peer -child=%s: %v\n", id, err)
			return 1
		}
		for _, f := range figures {
			fmt.Printf("%s go %s %s\n", f.id, strconv.FormatFloat(f.value, 'g', -1, 64), f.unit)
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "weft_go_peer: unknown -child workload %q; valid ids: %s\n",
		id, strings.Join(workloadIDs(), ","))
	return 2
}
