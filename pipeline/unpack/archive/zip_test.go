package archive_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
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
		func(h *pipeline.Header, o pipeline.OpenFunc) error { open = o; return nil }); err != nil {
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
