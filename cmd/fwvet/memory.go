package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryBound is the resident memory DESIGN.md bounds a run by, and
// memoryTarget the collector's limit under it: the limit counts what Go
// manages, not the pages of the binary (44 MiB of them resident in a diff
// of the /usr bench pair) nor what cgo's libdeflate allocates. Without a
// limit the heap grows to twice what is live before the collector runs.
const (
	memoryBound  = 256 << 20
	memoryTarget = memoryBound - 48<<20
)

// aimMemory sets the collector's limit to memoryTarget and, while more
// than nine tenths of that is live, to a quarter again what is live. A
// fixed limit below the live heap makes the collector run back to back,
// at up to half the CPU, and saves little, since what is live cannot be
// collected. On the /usr bench pair (168 MiB live at most) fwvet diff
// takes 45 s at 290 MiB resident with a limit of 256 MiB, 51-55 s at
// 266-268 MiB with 224 MiB, 62 s at 250-251 MiB with this one; with two
// unpacks at once and 261 MiB live, a half again took 41 s at 421 MiB, a
// quarter 108 s at 325 MiB.
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
			next := uint64(memoryTarget)
			if live > memoryTarget/10*9 {
				next = live + live/4
			}
			if next != limit {
				limit = next
				debug.SetMemoryLimit(int64(limit))
			}
		}
	}()
	return func() { close(done) }
}
