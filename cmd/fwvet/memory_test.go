package main

import (
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// aimChildEnv runs TestAimMemory's allocations in a child process: a
// process's peak RSS passes to the children it starts (Go starts them with
// vfork), so 384 MiB held here would count against every fwvet run the
// other tests measure.
const aimChildEnv = "FWVET_AIM_MEMORY_CHILD"

// TestAimMemory: the limit is the target, under the bound, while little is
// live, and rises to a quarter again what is live once more is, so that the
// collector does not run back to back over a heap it cannot shrink.
func TestAimMemory(t *testing.T) {
	if os.Getenv(aimChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAimMemory$", "-test.count=1")
		cmd.Env = append(os.Environ(), aimChildEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	stop := aimMemory()
	defer debug.SetMemoryLimit(math.MaxInt64)
	defer stop()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != memoryTarget || memoryTarget >= memoryBound {
		t.Errorf("limit with little live = %d MiB, want %d", got>>20, memoryTarget>>20)
	}
	live := make([][]byte, 0, 384)
	for range 384 { // 384 MiB, touched so that it is really there
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		live = append(live, b)
	}
	runtime.GC()
	// A collection during the loop above may have seen part of it live, and
	// the sampler may have set the limit from that, so wait for the full
	// 384 MiB rather than for any rise.
	want := int64(384<<20 + 96<<20)
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got < want || got > 600<<20 {
		t.Errorf("limit with 384 MiB live = %d MiB, want about 480", got>>20)
	}
	runtime.KeepAlive(live)
}
