package analyze

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// randomBytes is n bytes from crypto/rand whose first byte (0xa5) starts
// no known magic, so that the test never depends on the draw.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = 0xa5
	if m := magicOf(b[:min(n, pipeline.MatchSize)]); m != "" {
		t.Fatalf("random bytes read as %s", m)
	}
	return b
}

func TestBlobs(t *testing.T) {
	blob := randomBytes(t, 64<<10)
	small := randomBytes(t, 4095)
	text := strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", 1300)
	head := "#!/bin/sh\nexec /usr/bin/agent\n"
	tests := []struct {
		name    string
		ch      *pipeline.Change
		want    bool
		oldSize int64 // evidence old_size, 0 for none
		msg     string
	}{
		{name: "64 KiB of random bytes added", ch: added(fileEntry("/usr/lib/libcrypt0.so.1", string(blob), 0o644)), want: true, msg: "opaque data: 65536 bytes"},
		{name: "exactly 4 KiB", ch: added(fileEntry("/etc/blob", string(blob[:4096]), 0o644)), want: true, msg: "opaque data: 4096 bytes"},
		{
			name: "modified file that grew with random data",
			ch:   changed(fileEntry("/usr/bin/agent", head, 0o755), fileEntry("/usr/bin/agent", head+string(blob), 0o755), "content"),
			want: true, oldSize: int64(len(head)), msg: "grew from 30 to 65566 bytes of opaque data",
		},
		{
			name: "opaque file that grew",
			ch:   changed(fileEntry("/etc/blob", string(blob[:8192]), 0o644), fileEntry("/etc/blob", string(blob), 0o644), "content"),
			want: true, oldSize: 8192, msg: "grew from 8192 to 65536 bytes",
		},
		// Nothing to report.
		{name: "same data behind a gzip magic", ch: added(fileEntry("/usr/share/x.gz", "\x1f\x8b"+string(blob), 0o644))},
		{name: "same data behind an xz magic", ch: added(fileEntry("/usr/share/x.xz", "\xfd7zXZ\x00"+string(blob), 0o644))},
		{name: "same data behind an ELF magic", ch: added(fileEntry("/usr/bin/packed", "\x7fELF"+string(blob), 0o755))},
		{name: "small random file", ch: added(fileEntry("/etc/seed", string(small), 0o600))},
		{name: "low-entropy file", ch: added(fileEntry("/usr/share/words", text, 0o644))},
		{name: "zeros", ch: added(fileEntry("/etc/zero", string(make([]byte, 64<<10)), 0o644))},
		{
			name: "opaque file changed without growing",
			ch:   changed(fileEntry("/etc/blob", string(blob), 0o644), fileEntry("/etc/blob", string(randomBytes(t, 64<<10)), 0o644), "content"),
		},
		{
			name: "opaque file that shrank",
			ch:   changed(fileEntry("/etc/blob", string(blob), 0o644), fileEntry("/etc/blob", string(blob[:32<<10]), 0o644), "content"),
		},
		{name: "removed blob", ch: removed(fileEntry("/etc/blob", string(blob), 0o644))},
		{name: "metadata change of a blob", ch: changed(fileEntry("/etc/blob", string(blob), 0o644), fileEntry("/etc/blob", string(blob), 0o600), "mode")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, Blobs{}, scanned(t, tt.ch))
			if !tt.want {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDHighEntropyBlobAdded, pipeline.SeverityMedium, tt.ch)
			contains(t, "message", f.Message, tt.msg)
			e, err := strconv.ParseFloat(f.Evidence["entropy"].(string), 64)
			if err != nil || e <= 7.5 || e > 8 {
				t.Errorf("entropy = %v, want above 7.5", f.Evidence["entropy"])
			}
			if f.Evidence["size"] != tt.ch.New.Size || f.Evidence["sha256"] != tt.ch.New.SHA256 {
				t.Errorf("size %v sha256 %v, want %d %s", f.Evidence["size"], f.Evidence["sha256"], tt.ch.New.Size, tt.ch.New.SHA256)
			}
			first := []byte(readAll(t, tt.ch.New))[:16]
			if f.Evidence["first_bytes"] != hex.EncodeToString(first) {
				t.Errorf("first_bytes = %v, want %x", f.Evidence["first_bytes"], first)
			}
			old, has := f.Evidence["old_size"]
			if tt.oldSize == 0 && has || tt.oldSize != 0 && old != tt.oldSize {
				t.Errorf("old_size = %v, want %d", old, tt.oldSize)
			}
		})
	}
}
