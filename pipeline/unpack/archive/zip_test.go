package archive_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/archive"
)

// TestZipEntries: entries are read from where their data lies, without
// the archive's directory, and still checked against it: a wrong CRC-32
// or a stream shorter or longer than the directory says is an error, as
// archive/zip makes it.
func TestZipEntries(t *testing.T) {
	body := bytes.Repeat([]byte("busybox 1.36.1 mips32r2 "), 4096)
	for _, tc := range []struct {
		name    string
		method  uint16
		tamper  func(*zip.FileHeader)
		wantErr error
	}{
		{"deflate", zip.Deflate, nil, nil},
		{"store", zip.Store, nil, nil},
		{"deflate, wrong crc", zip.Deflate, func(h *zip.FileHeader) { h.CRC32 ^= 1 }, zip.ErrChecksum},
		{"store, wrong crc", zip.Store, func(h *zip.FileHeader) { h.CRC32 ^= 1 }, nil}, // stored data is read in place, unchecked, like any section
		{"deflate, says longer", zip.Deflate, func(h *zip.FileHeader) { h.UncompressedSize64++ }, io.ErrUnexpectedEOF},
		{"deflate, says shorter", zip.Deflate, func(h *zip.FileHeader) { h.UncompressedSize64-- }, zip.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := rawZip(t, "bin/busybox-1.36.1", tc.method, body, tc.tamper)
			var got []byte
			var readErr error
			err := archive.Zip{}.Walk(context.Background(), bytes.NewReader(data), int64(len(data)), pipeline.DefaultLimits(),
				func(h *pipeline.Header, open pipeline.OpenFunc) error {
					open = h.Opener(open)
					if h.Name != "bin/busybox-1.36.1" || open == nil {
						t.Fatalf("entry %q (open %v)", h.Name, open != nil)
					}
					rc, err := open(context.Background())
					if err != nil {
						return err
					}
					defer rc.Close()
					got, readErr = io.ReadAll(rc)
					return nil
				})
			if err != nil {
				t.Fatalf("walk: %v", err)
			}
			if tc.wantErr != nil {
				// The unpacker names the entry (its fileError): the opener
				// keeps no name, to stay small.
				if !errors.Is(readErr, tc.wantErr) || !strings.Contains(readErr.Error(), "zip entry") {
					t.Errorf("read error %v, want %v saying it is a zip entry", readErr, tc.wantErr)
				}
				return
			}
			if readErr != nil || !bytes.Equal(got, body) {
				t.Errorf("read %d bytes (%v), want the %d written", len(got), readErr, len(body))
			}
		})
	}
}

// rawZip writes one entry, compressing it itself so that tamper can make
// the directory record disagree with the data.
func rawZip(t *testing.T, name string, method uint16, body []byte, tamper func(*zip.FileHeader)) []byte {
	t.Helper()
	var comp bytes.Buffer
	if method == zip.Deflate {
		var tmp bytes.Buffer
		zw := zip.NewWriter(&tmp)
		w, err := zw.Create("x")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
		zw.Close()
		zr, err := zip.NewReader(bytes.NewReader(tmp.Bytes()), int64(tmp.Len()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := zr.File[0].OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&comp, rc)
	} else {
		comp.Write(body)
	}
	h := &zip.FileHeader{Name: name, Method: method, CRC32: crc32.ChecksumIEEE(body),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: uint64(len(body))}
	if tamper != nil {
		tamper(h)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(comp.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestZipReopen: inflaters are pooled, so an entry opened again after a
// close reads its own bytes, and a closed reader stays closed.
func TestZipReopen(t *testing.T) {
	body := []byte(strings.Repeat("dropbear-2022.83 ", 4000))
	data := rawZip(t, "usr/sbin/dropbear", zip.Deflate, body, nil)
	var open pipeline.OpenFunc
	if err := (archive.Zip{}).Walk(context.Background(), bytes.NewReader(data), int64(len(data)), pipeline.DefaultLimits(),
		func(h *pipeline.Header, o pipeline.OpenFunc) error { open = h.Opener(o); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rc, err := open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("open %d: %d bytes (%v), want the %d written", i, len(got), err, len(body))
		}
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Errorf("open %d: read after close succeeded", i)
		}
	}
}

// TestZipAgreesWithArchiveZip: on the zips of Go's own archive/zip tests
// (made by 7-Zip, WinZip, WinRAR, Info-ZIP, macOS, Windows XP and Go, with
// zip64, data descriptors, prefixes, trailing junk and a wrong directory
// size among them), the walk, which reads the central directory one
// record at a time, lists what archive/zip lists, with the same sizes and
// directories, and reads the same bytes; an archive archive/zip refuses
// is refused.
func TestZipAgreesWithArchiveZip(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "src", "archive", "zip", "testdata")
	names, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
	if len(names) < 20 {
		t.Fatalf("%d zips in %s, want Go's test archives", len(names), dir)
	}
	for _, name := range names {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if zerr != nil && !errors.Is(zerr, zip.ErrInsecurePath) {
				zr = nil
			}
			if zr != nil {
				for _, f := range zr.File {
					want[strings.ReplaceAll(f.Name, `\`, "/")] = describe(f.FileInfo().IsDir(), int64(f.UncompressedSize64), f.Open)
				}
			}
			got := map[string]string{}
			werr := archive.Zip{}.Walk(context.Background(), bytes.NewReader(data), int64(len(data)), pipeline.DefaultLimits(),
				func(h *pipeline.Header, open pipeline.OpenFunc) error {
					open = h.Opener(open)
					if h.Type == pipeline.TypeSymlink {
						got[h.Name] = "symlink " + h.LinkName
						return nil
					}
					got[h.Name] = describe(h.Type == pipeline.TypeDir, h.Size, func() (io.ReadCloser, error) { return open(context.Background()) })
					return nil
				})
			if (zr == nil) != (werr != nil) {
				t.Fatalf("archive/zip: %v; Walk: %v", zerr, werr)
			}
			for n, w := range want {
				if g := got[n]; g != w && !strings.HasPrefix(g, "symlink ") {
					t.Errorf("%s: walk gives %q, archive/zip %q", n, g, w)
				}
			}
			if len(got) != len(want) {
				t.Errorf("walk lists %d entries, archive/zip %d", len(got), len(want))
			}
		})
	}
}

// describe is an entry as both readers must agree on it: directory or
// not, size, and its bytes' digest or that they could not be read.
func describe(dir bool, size int64, open func() (io.ReadCloser, error)) string {
	if dir {
		return "dir"
	}
	rc, err := open()
	if err != nil {
		return fmt.Sprintf("file %d unreadable", size)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Sprintf("file %d unreadable", size)
	}
	return fmt.Sprintf("file %d %x", size, h.Sum(nil))
}
