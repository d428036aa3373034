package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryTarget is the memory DESIGN.md bounds a run by. The collector is
// told to aim for it, so that the heap does not grow to twice what is live
// before it runs: on two 2 GB images of 150,000 files that halves the peak.
const memoryTarget = 256 << 20

// aimMemory sets the collector's limit to memoryTarget and, while more
// than that is live, to half again what is live. A fixed limit below the
// live heap makes the collector run back to back, at up to half the CPU,
// and saves little, since what is live cannot be collected: on the /usr
// bench pair (261 MiB live at most) fwvet diff took 50 s at 371 MiB with
// it, 41 s at 421 MiB with this, 33 s at 671 MiB with no limit at all.
// It returns a function that stops the adjustment.
func aimMemory() (stop func()) {
	debug.SetMemoryLimit(memoryTarget)
	done := make(chan struct{})
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		limit := uint64(memoryTarget)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() != metrics.KindUint64 {
				return
			}
			live := sample[0].Value.Uint64()
			if next := max(memoryTarget, live+live/2); next != limit {
				limit = next
				debug.SetMemoryLimit(int64(limit))
			}
		}
	}()
	return func() { close(done) }
}
