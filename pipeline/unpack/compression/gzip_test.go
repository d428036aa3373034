package compression_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// TestGzipReuse: readers are pooled, so a stream read after another gets
// its own bytes only, a reader closed is closed for good, and a stream
// that fails its header leaves the pool usable.
func TestGzipReuse(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	first, second := strings.Repeat("busybox-1.36.1 ", 5000), "dropbear-2022.83"
	read := func(data []byte) (string, io.ReadCloser) {
		t.Helper()
		rc, err := compression.Gzip{}.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), rc
	}
	got, rc := read(gz(first))
	if got != first {
		t.Fatalf("first stream: %d bytes", len(got))
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after close: %v, want os.ErrClosed", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := (compression.Gzip{}).NewReader(bytes.NewReader([]byte("\x1f\x8b\x08\x00"))); err == nil {
		t.Error("a broken header opened")
	}
	for range 3 {
		got, rc = read(gz(second))
		rc.Close()
		if got != second {
			t.Fatalf("a reused reader gave %q, want %q", got, second)
		}
	}
}
