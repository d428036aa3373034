//go:build cgo && !purego

package block

/*
#cgo LDFLAGS: -ldeflate -llzma
#include <stdlib.h>
#include <libdeflate.h>
#include <lzma.h>

// fw_xz_decode decodes one xz stream from in into out with s, which keeps
// its allocations from the last stream. When out fills before the stream
// ends, one more byte tells a stream that ends there from one that would
// overflow (FW_XZ_TOO_LONG); lzma_stream_buffer_decode cannot, as it undoes
// its output on any error.
#define FW_XZ_TOO_LONG 1000
static int fw_xz_decode(lzma_stream *s, uint64_t memlimit, const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size, size_t *out_n) {
	lzma_ret r = lzma_stream_decoder(s, memlimit, 0);
	if (r != LZMA_OK)
		return r;
	s->next_in = in;
	s->avail_in = in_size;
	s->next_out = out;
	s->avail_out = out_size;
	r = lzma_code(s, LZMA_FINISH);
	*out_n = out_size - s->avail_out;
	if ((r == LZMA_OK || r == LZMA_BUF_ERROR) && s->avail_out == 0) {
		uint8_t probe;
		s->next_out = &probe;
		s->avail_out = 1;
		r = lzma_code(s, LZMA_FINISH);
		if (s->avail_out == 0)
			r = FW_XZ_TOO_LONG;
	}
	s->next_in = NULL;
	s->next_out = NULL;
	return r;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Native reports whether this build decodes with the C libraries.
const Native = true

var (
	zlibImpl    = nativeZlib
	deflateImpl = nativeDeflate
	xzImpl      = nativeXZ
)

// A libdeflate decompressor holds only tables; one per goroutine at a time,
// pooled, and freed when the pool drops it.
type inflater struct {
	d *C.struct_libdeflate_decompressor
}

var inflaters = sync.Pool{New: func() any {
	d := C.libdeflate_alloc_decompressor()
	if d == nil {
		return nil
	}
	in := &inflater{d}
	runtime.AddCleanup(in, func(d *C.struct_libdeflate_decompressor) { C.libdeflate_free_decompressor(d) }, d)
	return in
}}

var errNoMemory = errors.New("out of memory for a decompressor")

func nativeZlib(dst, src []byte) (int, error) { return inflate("zlib", dst, src) }

func nativeDeflate(dst, src []byte) (int, error) { return inflate("deflate", dst, src) }

func inflate(format string, dst, src []byte) (int, error) {
	in, _ := inflaters.Get().(*inflater)
	if in == nil {
		return 0, fmt.Errorf("%s: %w", format, errNoMemory)
	}
	defer inflaters.Put(in)
	var n C.size_t
	inp, outp := unsafe.Pointer(unsafe.SliceData(src)), unsafe.Pointer(unsafe.SliceData(dst))
	var r C.enum_libdeflate_result
	if format == "zlib" {
		r = C.libdeflate_zlib_decompress(in.d, inp, C.size_t(len(src)), outp, C.size_t(len(dst)), &n)
	} else {
		r = C.libdeflate_deflate_decompress(in.d, inp, C.size_t(len(src)), outp, C.size_t(len(dst)), &n)
	}
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
	switch r {
	case C.LIBDEFLATE_SUCCESS:
		return int(n), nil
	case C.LIBDEFLATE_INSUFFICIENT_SPACE:
		return 0, ErrTooLong
	case C.LIBDEFLATE_BAD_DATA:
		return 0, fmt.Errorf("%s: corrupt or truncated data", format)
	}
	return 0, fmt.Errorf("%s: libdeflate result %d", format, int(r))
}

// xzMemlimit lets liblzma allocate a dictionary of XZDictMax and its
// decoder state (about 30 KiB, BCJ filters included), and no more.
const xzMemlimit = XZDictMax + 256<<10

// An xz decoder keeps its dictionary and state from one block to the next;
// pooled like the inflaters. Its lzma_stream is C memory, as liblzma keeps
// pointers in it.
type xzDecoder struct{ s *C.lzma_stream }

var xzDecoders = sync.Pool{New: func() any {
	s := (*C.lzma_stream)(C.calloc(1, C.sizeof_lzma_stream))
	if s == nil {
		return nil
	}
	d := &xzDecoder{s}
	runtime.AddCleanup(d, func(s *C.lzma_stream) {
		C.lzma_end(s)
		C.free(unsafe.Pointer(s))
	}, s)
	return d
}}

func nativeXZ(dst, src []byte) (int, error) {
	d, _ := xzDecoders.Get().(*xzDecoder)
	if d == nil {
		return 0, fmt.Errorf("xz: %w", errNoMemory)
	}
	defer xzDecoders.Put(d)
	var n C.size_t
	r := C.fw_xz_decode(d.s, xzMemlimit, (*C.uint8_t)(unsafe.SliceData(src)), C.size_t(len(src)),
		(*C.uint8_t)(unsafe.SliceData(dst)), C.size_t(len(dst)), &n)
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
	switch r {
	case C.LZMA_STREAM_END:
		return int(n), nil
	case C.FW_XZ_TOO_LONG:
		return 0, ErrTooLong
	case C.LZMA_OK, C.LZMA_BUF_ERROR:
		return 0, errors.New("xz: truncated data")
	case C.LZMA_MEMLIMIT_ERROR:
		return 0, fmt.Errorf("xz: the dictionary is larger than %d bytes", XZDictMax)
	case C.LZMA_FORMAT_ERROR:
		return 0, errors.New("xz: not an xz stream")
	case C.LZMA_OPTIONS_ERROR:
		return 0, errors.New("xz: unsupported options")
	case C.LZMA_DATA_ERROR:
		return 0, errors.New("xz: corrupt data")
	case C.LZMA_MEM_ERROR:
		return 0, fmt.Errorf("xz: %w", errNoMemory)
	}
	return 0, fmt.Errorf("xz: liblzma result %d", int(r))
}
