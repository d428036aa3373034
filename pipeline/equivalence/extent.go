package equivalence

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/fwvet/fwvet/pipeline"
)

// verifyExtent checks that every byte of a container is accounted for by
// the structures fwvet parsed: a compressed stream ends where its data
// does, an archive's end is followed only by padding (a run of 0x00 or
// 0xFF). Data appended after a container's end is what no entry shows,
// so container-metadata does not explain a container it cannot check.
// formats are the container's formats, outer first ("gzip tar").
func verifyExtent(ctx context.Context, open func(context.Context) (io.ReadCloser, error), formats string) error {
	if open == nil {
		return errors.New("its bytes cannot be read again")
	}
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	return checkExtent(bufio.NewReaderSize(pipeline.ContextReader(ctx, rc), 1<<16), strings.Fields(formats))
}

// checkExtent checks the formats of fs, outer first, over r.
func checkExtent(r *bufio.Reader, fs []string) error {
	if len(fs) == 0 {
		return errors.New("no container format")
	}
	f := fs[0]
	switch f {
	case "raw":
		// The carver cuts a raw image into regions that cover every
		// byte (containers, blobs, padding), each an entry.
		return nil
	case "gzip", "xz", "zstd", "bzip2":
		d, err := decompressor(f, r)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(fs) > 1 {
			if err := checkExtent(bufio.NewReaderSize(d, 1<<16), fs[1:]); err != nil {
				return err
			}
		}
		// The inner check read the stream to its end; make sure of it.
		if _, err := io.Copy(io.Discard, d); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		return padding(r, f)
	case "tar":
		tr := tar.NewReader(r)
		for {
			_, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("tar: %w", err)
			}
		}
	case "cpio":
		if err := skipCpio(r); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
	case "squashfs":
		h := make([]byte, 96)
		if _, err := io.ReadFull(r, h); err != nil || string(h[:4]) != "hsqs" {
			return errors.New("squashfs: no superblock")
		}
		used := int64(binary.LittleEndian.Uint64(h[40:48]))
		if used < 96 {
			return errors.New("squashfs: bytes_used is too small")
		}
		if _, err := io.CopyN(io.Discard, r, used-96); err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
	case "uimage":
		h := make([]byte, 64)
		if _, err := io.ReadFull(r, h); err != nil || binary.BigEndian.Uint32(h) != 0x27051956 {
			return errors.New("uimage: no header")
		}
		if _, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(h[12:16]))); err != nil {
			return fmt.Errorf("uimage: %w", err)
		}
	default:
		return fmt.Errorf("cannot check that every byte of a %s container is accounted for", f)
	}
	if len(fs) > 1 {
		// A file system or archive holds entries, not a nested stream.
		return fmt.Errorf("cannot check a %s container inside %s", strings.Join(fs[1:], " "), f)
	}
	return padding(r, f)
}

func decompressor(f string, r io.Reader) (io.Reader, error) {
	switch f {
	case "gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		// One member: what follows it must be padding, not another stream.
		z.Multistream(false)
		return z, nil
	case "xz":
		// One stream, as the unpacker reads it; padding may follow.
		c := xz.ReaderConfig{SingleStream: true}
		return c.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case "bzip2":
		return bzip2.NewReader(r), nil
	}
	return nil, fmt.Errorf("unknown compression %s", f)
}

// padding checks that what is left of r is one fill byte, 0x00 or 0xFF, or nothing.
func padding(r io.Reader, format string) error {
	buf := make([]byte, 1<<16)
	fill, n := -1, int64(0)
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			if fill < 0 {
				if c != 0 && c != 0xff {
					return fmt.Errorf("%d bytes follow the end of the %s data: %q…", n+1, format, buf[:min(k, 16)])
				}
				fill = int(c)
			}
			if int(c) != fill {
				return fmt.Errorf("data follows the end of the %s data, after %d bytes of padding", format, n)
			}
			n++
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// skipCpio reads cpio headers and data up to the trailer (newc, crc, odc).
func skipCpio(r io.Reader) error {
	var pos int64
	read := func(n int64) ([]byte, error) {
		if n > 1<<16 {
			return nil, errors.New("a name longer than 64 KiB")
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		pos += n
		return b, err
	}
	skip := func(n int64) error {
		_, err := io.CopyN(io.Discard, r, n)
		pos += n
		return err
	}
	align := func() error {
		if pad := (4 - pos%4) % 4; pad > 0 {
			return skip(pad)
		}
		return nil
	}
	for {
		magic, err := read(6)
		if err != nil {
			return err
		}
		var name []byte
		var size int64
		switch string(magic) {
		case "070701", "070702":
			h, err := read(104)
			if err != nil {
				return err
			}
			ns, err1 := strconv.ParseUint(string(h[88:96]), 16, 32)
			fs, err2 := strconv.ParseUint(string(h[48:56]), 16, 32)
			if err1 != nil || err2 != nil {
				return errors.New("bad newc header")
			}
			if name, err = read(int64(ns)); err != nil {
				return err
			}
			if err := align(); err != nil {
				return err
			}
			size = int64(fs)
			if err := skip(size); err != nil {
				return err
			}
			if err := align(); err != nil {
				return err
			}
		case "070707":
			h, err := read(70)
			if err != nil {
				return err
			}
			ns, err1 := strconv.ParseUint(string(h[53:59]), 8, 32)
			fs, err2 := strconv.ParseUint(string(h[59:70]), 8, 40)
			if err1 != nil || err2 != nil {
				return errors.New("bad odc header")
			}
			if name, err = read(int64(ns)); err != nil {
				return err
			}
			if err := skip(int64(fs)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("bad magic %q", magic)
		}
		if string(bytes.TrimRight(name, "\x00")) == "TRAILER!!!" {
			return nil
		}
	}
}
