package unpack

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSigWatchSeesWhatTheScanSees: a file fed to sigWatch in writes of any
// size is reported to hold a signature exactly when the carver's search of
// the whole file finds one, magics split between writes included. A file
// sigWatch passes over is never read again, so a miss here is a container
// left uncarved.
func TestSigWatchSeesWhatTheScanSees(t *testing.T) {
	sigs, reach := signatures(Formats())
	rng := rand.New(rand.NewPCG(1, 2))
	// Text holds none of the magics; each case plants one, or none.
	text := make([]byte, 200<<10)
	for i := range text {
		text[i] = "abcdefghij klmnop\n"[rng.IntN(18)]
	}
	type plant struct {
		magic []byte
		at    int
	}
	plants := []plant{
		{nil, 0},
		{[]byte("hsqs"), 4096},             // squashfs, aligned
		{[]byte("hsqs"), 4097},             // unaligned: no container there
		{[]byte{0x1f, 0x8b, 0x08}, 65535},  // gzip, any offset
		{[]byte{0x53, 0xef}, 1080 + 512*7}, // ext4's magic 1080 bytes into an aligned start
		{[]byte{0x53, 0xef}, 1080 + 512*7 + 2},
		{[]byte{0x53, 0xef}, 100}, // before 1080: no start
		{[]byte{0x85, 0x19}, len(text) - 2},
		{[]byte("070701"), 131070},
	}
	wants := map[bool]int{}
	for _, p := range plants {
		data := append([]byte(nil), text...)
		copy(data[p.at:], p.magic)
		want := false
		eachSignature(sigs, data, 0, len(data), func(int64, signature) bool { want = true; return false })
		wants[want]++
		for _, write := range []int{1, 3, 1000, 1081, 4096, 128 << 10, len(data)} {
			t.Run(fmt.Sprintf("%x@%d/writes of %d", p.magic, p.at, write), func(t *testing.T) {
				w := newSigWatch(sigs, reach)
				for off := 0; off < len(data); off += write {
					w.Write(data[off:min(off+write, len(data))])
				}
				if w.found != want {
					t.Errorf("sigWatch found %v, the whole-file search %v", w.found, want)
				}
			})
		}
	}
	if wants[true] == 0 || wants[false] == 0 {
		t.Errorf("the plants should give files with and without a signature: %v", wants)
	}
}
