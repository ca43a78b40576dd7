// Command weft_go_peer runs the Go side of the benchmark workloads of
// docs/benchmarks.md (W2a to W9) and of the contention family (C1 to C5,
// contention.go) and prints one `workload go value unit` line per
// figure, the format weft_showcase prints for weft and its C++ peers, so that a
// runner can put the runtimes side by side.
//
//	weft_go_peer [-quick] [-workloads W2a,W3,W5] [-repetitions 3] [-w3_leaves 1000000] ...
//
// Every size is a flag, so that the runner passes the C++ side's values. Each
// workload runs once untimed (heap growth, goroutine and stack caches), then
// -repetitions times; only the median of each figure is printed. W7 and W8 run
// each repetition in a fresh child process instead (see resources.go). Lines
// starting with "# " are comments; progress goes to stderr.
//
// With -serve it is instead a server for the network workloads W10-W12
// (serve.go): weft_go_peer -serve=http|echo -port=0.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// sizes are the parameters of the workloads, one per flag (defineSizeFlags).
type sizes struct {
	w2aN          int
	w2bN          int
	w2bRounds     int
	w3Leaves      int64
	w4N           int
	w5Goroutines  int
	w5M           int
	w6Samples     int
	w7Seconds     float64
	w8N           int
	w9Requests    int
	w9MeanSleepUS float64
	w9Sleeps      int
	// C1-C5 (contention.go)
	cContenders int
	cBatches    int
	cRounds     int
	cWriteEvery int
	cCapacity   int
	cValues     int
	cHerds      int
	cPhases     int
}

// sizeFlagNames lists the flags that set sizes, for passing them on to a child.
var sizeFlagNames []string

// quickSizes shrinks the workloads 10-20x for -quick, except where a flag was
// given explicitly. W3 keeps a power of 10; W5 keeps its 64 goroutines, W9 its
// sleep distribution and C1-C5 their 1000 goroutines and capacities, which are the shape of the workload rather than its length.
var quickSizes = map[string]string{
	"w2a_n":       "20000",
	"w2b_n":       "10000",
	"w2b_rounds":  "3",
	"w3_leaves":   "100000",
	"w4_n":        "100000",
	"w5_m":        "10000",
	"w6_samples":  "500",
	"w7_seconds":  "0.2",
	"w8_n":        "10000",
	"w9_requests": "1000",
	"c_batches":   "3",
	"c_rounds":    "10",
	"c_values":    "20",
	"c_herds":     "10",
	"c_phases":    "20",
}

func defineSizeFlags(fs *flag.FlagSet, s *sizes) {
	intFlag := func(p *int, name string, value int, usage string) {
		fs.IntVar(p, name, value, usage)
		sizeFlagNames = append(sizeFlagNames, name)
	}
	floatFlag := func(p *float64, name string, value float64, usage string) {
		fs.Float64Var(p, name, value, usage)
		sizeFlagNames = append(sizeFlagNames, name)
	}
	intFlag(&s.w2aN, "w2a_n", 200000, "W2a: spawn+join pairs per measurement")
	intFlag(&s.w2bN, "w2b_n", 100000, "W2b: goroutines per batch")
	intFlag(&s.w2bRounds, "w2b_rounds", 5, "W2b: batches per measurement (their median is the figure)")
	fs.Int64Var(&s.w3Leaves, "w3_leaves", 1000000, "W3: leaves of the skynet tree, a power of 10 up to 1e9")
	sizeFlagNames = append(sizeFlagNames, "w3_leaves")
	intFlag(&s.w4N, "w4_n", 1000000, "W4: round trips")
	intFlag(&s.w5Goroutines, "w5_goroutines", 64, "W5: goroutines contending for the mutex")
	intFlag(&s.w5M, "w5_m", 100000, "W5: lock/unlock pairs per goroutine")
	intFlag(&s.w6Samples, "w6_samples", 10000, "W6: wake-ups timed")
	floatFlag(&s.w7Seconds, "w7_seconds", 2, "W7: seconds of idleness measured")
	intFlag(&s.w8N, "w8_n", 100000, "W8: parked goroutines")
	intFlag(&s.w9Requests, "w9_requests", 10000, "W9: concurrent requests")
	floatFlag(&s.w9MeanSleepUS, "w9_mean_sleep_us", 50, "W9: mean of the exponentially distributed sleeps, in µs")
	intFlag(&s.w9Sleeps, "w9_sleeps", 4, "W9: sleeps (each followed by the locked increment) per request")
	intFlag(&s.cContenders, "c_contenders", 1000, "C1-C5: goroutines (C3: half send, half receive; C4: waiters)")
	intFlag(&s.cBatches, "c_batches", 5, "C1-C5: batches per measurement, each with fresh goroutines; times are summed")
	intFlag(&s.cRounds, "c_rounds", 50, "C1, C2: acquisitions (C2: operations) per goroutine and batch")
	intFlag(&s.cWriteEvery, "c_write_every", 64, "C2: one operation in this many is a write")
	intFlag(&s.cCapacity, "c_capacity", 16, "C3: capacity of the channel")
	intFlag(&s.cValues, "c_values", 100, "C3: values per sender and batch")
	intFlag(&s.cHerds, "c_herds", 40, "C4: Broadcast herds per batch")
	intFlag(&s.cPhases, "c_phases", 100, "C5: barrier phases per batch")
}

// validate says which flag is out of range, and what the range is.
func (s sizes) validate() error {
	positive := []struct {
		name  string
		value int
	}{
		{"w2a_n", s.w2aN}, {"w2b_n", s.w2bN}, {"w2b_rounds", s.w2bRounds},
		{"w4_n", s.w4N}, {"w5_goroutines", s.w5Goroutines}, {"w5_m", s.w5M},
		{"w6_samples", s.w6Samples}, {"w8_n", s.w8N}, {"w9_requests", s.w9Requests},
		{"w9_sleeps", s.w9Sleeps}, {"c_batches", s.cBatches}, {"c_rounds", s.cRounds},
		{"c_write_every", s.cWriteEvery}, {"c_capacity", s.cCapacity}, {"c_values", s.cValues},
		{"c_herds", s.cHerds}, {"c_phases", s.cPhases},
	}
	for _, p := range positive {
		if p.value < 1 {
			return fmt.Errorf("-%s is %d; it must be at least 1", p.name, p.value)
		}
	}
	if s.cContenders < 2 {
		return fmt.Errorf("-c_contenders is %d; it must be at least 2 (C3 needs a sender and a receiver)",
			s.cContenders)
	}
	if !isPowerOf10(s.w3Leaves) || s.w3Leaves > 1e9 {
		return fmt.Errorf("-w3_leaves is %d; it must be a power of 10 from 1 to 1000000000", s.w3Leaves)
	}
	if !(s.w7Seconds > 0) {
		return fmt.Errorf("-w7_seconds is %g; it must be above 0", s.w7Seconds)
	}
	if !(s.w9MeanSleepUS > 0) {
		return fmt.Errorf("-w9_mean_sleep_us is %g; it must be above 0", s.w9MeanSleepUS)
	}
	return nil
}

func isPowerOf10(n int64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// line is one figure: printed as `id go value unit`.
type line struct {
	id    string
	value float64
	unit  string
}

type workload struct {
	id string
	// measure runs the workload once and returns its figures, or what went wrong
	// (a wrong answer, a miscounted counter).
	measure func(s sizes) ([]line, error)
	// warmUp gives the sizes of the untimed first run; nil means the same sizes.
	warmUp func(s sizes) sizes
	// An isolated workload measures each repetition in a fresh child process, with
	// no warm-up run in the parent: what it measures (idle CPU, resident memory,
	// the first run in a process: W3-cold, W9-cold) depends on what earlier
	// workloads left behind in the process.
	isolated bool
}

var workloads = []workload{
	{id: "W2a", measure: measureSpawnJoin},
	{id: "W2b", measure: measureSpawnBatch},
	{id: "W3", measure: measureSkynet},
	{id: "W3-cold", measure: measureSkynetCold, isolated: true},
	{id: "W4", measure: measurePingPong},
	{id: "W5", measure: measureContendedMutex},
	{id: "W6", measure: measureWakeUp, warmUp: func(s sizes) sizes {
		s.w6Samples = (s.w6Samples + 9) / 10
		return s
	}},
	{id: "W6-100us", measure: measureWakeUpShortGap, warmUp: func(s sizes) sizes {
		s.w6Samples = (s.w6Samples + 9) / 10
		return s
	}},
	{id: "W7", measure: measureIdleCost, isolated: true},
	{id: "W8", measure: measureParkedMemory, isolated: true},
	{id: "W9", measure: measureFanOut},
	{id: "W9-cold", measure: measureFanOutCold, isolated: true},
	{id: "C1-N1", measure: measureSemaphore(1), warmUp: oneBatch},
	{id: "C1-N3", measure: measureSemaphore(3), warmUp: oneBatch},
	{id: "C1-N16", measure: measureSemaphore(16), warmUp: oneBatch},
	{id: "C2", measure: measureSharedReaders, warmUp: oneBatch},
	{id: "C3", measure: measureChannel, warmUp: oneBatch},
	{id: "C4", measure: measureHerd, warmUp: oneBatch},
	{id: "C5", measure: measureBarrier, warmUp: oneBatch},
}

// oneBatch is the warm-up of C1-C5: one batch, as the C++ side's untimed one.
func oneBatch(s sizes) sizes {
	s.cBatches = 1
	return s
}

func workloadIDs() []string {
	ids := make([]string, len(workloads))
	for i, w := range workloads {
		ids[i] = w.id
	}
	return ids
}

// selectWorkloads returns the workloads named in the comma-separated list (any
// case), in the order of `workloads`.
func selectWorkloads(list string) ([]workload, error) {
	wanted := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, w := range workloads {
			if strings.EqualFold(name, w.id) {
				wanted[w.id] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown workload %q in -workloads; valid ids: %s",
				name, strings.Join(workloadIDs(), ","))
		}
	}
	if len(wanted) == 0 {
		return nil, fmt.Errorf("-workloads names no workload; valid ids: %s",
			strings.Join(workloadIDs(), ","))
	}
	var selected []workload
	for _, w := range workloads {
		if wanted[w.id] {
			selected = append(selected, w)
		}
	}
	return selected, nil
}

func usageError(err error) {
	fmt.Fprintf(os.Stderr, "weft_go_peer: %v\n", err)
	os.Exit(2)
}

func main() {
	fs := flag.CommandLine
	var s sizes
	defineSizeFlags(fs, &s)
	list := fs.String("workloads", strings.Join(workloadIDs(), ","),
		"comma-separated workload ids to run")
	quick := fs.Bool("quick", false,
		"shrink every size 10-20x (unless given explicitly) so that the run takes a few seconds")
	repetitions := fs.Int("repetitions", 3, "measurements per workload; the median is printed")
	child := fs.String("child", "",
		"internal: measure the isolated workload `ID` (W3-cold, W7, W8, W9-cold) once and print full-precision lines")
	serveKind := fs.String("serve", "",
		"run as a server instead (W10-W12): `http` (net/http hello) or echo (a goroutine per connection)")
	port := fs.Int("port", 0, "with -serve: the port on 127.0.0.1 to listen on; 0 lets the kernel pick")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		usageError(fmt.Errorf("unexpected argument %q; every parameter is a -flag", fs.Arg(0)))
	}
	if *serveKind != "" {
		os.Exit(serve(*serveKind, *port))
	}

	if *quick {
		explicit := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
		for name, value := range quickSizes {
			if !explicit[name] {
				if err := fs.Set(name, value); err != nil {
					panic(err)
				}
			}
		}
	}
	if err := s.validate(); err != nil {
		usageError(err)
	}
	if *repetitions < 1 {
		usageError(fmt.Errorf("-repetitions is %d; it must be at least 1", *repetitions))
	}

	if *child != "" {
		os.Exit(runChild(*child, s))
	}

	selected, err := selectWorkloads(*list)
	if err != nil {
		usageError(err)
	}

	fmt.Printf("# weft_go_peer %s %s/%s GOMAXPROCS=%d NumCPU=%d\n", runtime.Version(),
		runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("# quick=%t repetitions=%d (the median is printed) %s\n", *quick, *repetitions,
		strings.Join(sizeArgs(fs), " "))

	failed := false
	for _, w := range selected {
		figures, err := run(w, s, *repetitions, fs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "weft_go_peer: %s failed: %v\n", w.id, err)
			fmt.Printf("# %s go error: %v\n", w.id, err)
			failed = true
			continue
		}
		for _, f := range figures {
			fmt.Printf("%s go %s %s\n", f.id, formatNumber(f.value), f.unit)
		}
		// The next workload should not pay for this one's garbage.
		runtime.GC()
	}
	if failed {
		os.Exit(1)
	}
}

// run measures w `repetitions` times after its warm-up and returns the median of
// each figure, in the order the workload reports them.
func run(w workload, s sizes, repetitions int, fs *flag.FlagSet) ([]line, error) {
	if w.isolated {
		fmt.Fprintf(os.Stderr, "weft_go_peer: %s: %d repetitions, each in a fresh process\n",
			w.id, repetitions)
	} else {
		fmt.Fprintf(os.Stderr, "weft_go_peer: %s: warm-up and %d repetitions\n", w.id, repetitions)
		warm := s
		if w.warmUp != nil {
			warm = w.warmUp(s)
		}
		if _, err := w.measure(warm); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var order []string
	values := map[string][]float64{}
	units := map[string]string{}
	for r := 0; r < repetitions; r++ {
		var figures []line
		var err error
		start := time.Now()
		if w.isolated {
			figures, err = measureInChild(w.id, sizeArgs(fs))
		} else {
			figures, err = w.measure(s)
		}
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "weft_go_peer: %s: repetition %d/%d took %.2f s\n",
			w.id, r+1, repetitions, time.Since(start).Seconds())
		for _, f := range figures {
			if _, seen := units[f.id]; !seen {
				order = append(order, f.id)
				units[f.id] = f.unit
			}
			values[f.id] = append(values[f.id], f.value)
		}
	}
	medians := make([]line, len(order))
	for i, id := range order {
		medians[i] = line{id, median(values[id]), units[id]}
	}
	return medians, nil
}

// sizeArgs spells out every size as a flag, so that a child (or a reader of the
// output) sees the values -quick resolved to.
func sizeArgs(fs *flag.FlagSet) []string {
	args := make([]string, len(sizeFlagNames))
	for i, name := range sizeFlagNames {
		args[i] = "-" + name + "=" + fs.Lookup(name).Value.String()
	}
	return args
}
