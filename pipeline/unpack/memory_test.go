package unpack_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// memoryImageEnv names, in the child process of TestMemoryBound, the image
// the child unpacks.
const memoryImageEnv = "FWVET_MEMORY_IMAGE"

// memoryBound is the memory DESIGN allows one input: the peak RSS of a
// whole unpack, runtime and test binary included.
const memoryBound = 256 << 20

// TestMemoryBound unpacks hostile squashfs shapes, made by the real
// mksquashfs, each in a child process with the default limits, and holds
// the child's peak RSS under memoryBound. Each shape is small on disk and
// cheap to make; what it costs the reader is what the input controls.
func TestMemoryBound(t *testing.T) {
	if img := os.Getenv(memoryImageEnv); img != "" {
		memoryChild(t, img)
		return
	}
	if testing.Short() {
		t.Skip("builds images with mksquashfs and unpacks each in a child process")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads peak RSS as Linux reports it, in KiB")
	}
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs is not installed")
	}
	shapes := []struct {
		name  string
		build func(t *testing.T, dir string)
		args  []string
		// perEntry, when set, bounds the peak of the live heap by the
		// entry: what an image at the entry limit, a million of them a
		// side, costs both trees of a diff at once.
		perEntry int
		// pack, when set, makes the image of dir instead of mksquashfs.
		pack func(dir, img string) *exec.Cmd
	}{
		// 20,000 hard links of one 1 GiB sparse file: 20,000 directory
		// entries naming one inode with a block list of 8,192 words.
		{"hardlinks", func(t *testing.T, dir string) {
			sparse(t, filepath.Join(dir, "sparse"), 1<<30)
			for i := range 20000 {
				if err := os.Link(filepath.Join(dir, "sparse"), filepath.Join(dir, fmt.Sprintf("l%d", i))); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
		// The same with 4 KiB blocks and a file of 256 MiB: 65,536 words,
		// 256 KiB of list for each of the 20,000 entries, 5 GiB if each
		// entry kept its own (the child's watchdog stops it at 1 GiB).
		{"hardlinks-4k", func(t *testing.T, dir string) {
			sparse(t, filepath.Join(dir, "sparse"), 256<<20)
			for i := range 20000 {
				if err := os.Link(filepath.Join(dir, "sparse"), filepath.Join(dir, fmt.Sprintf("l%d", i))); err != nil {
					t.Fatal(err)
				}
			}
		}, []string{"-b", "4096"}, 0, nil},
		// Distinct sparse inodes with 4 KiB blocks: a block list of 32,768
		// words each. mksquashfs reads every byte it declares (0.3 to 3 s a
		// GiB), so this shape stays small; its lists are read lazily like
		// those of the hard links.
		{"sparse-distinct", func(t *testing.T, dir string) {
			for i := range 16 {
				sparse(t, filepath.Join(dir, fmt.Sprintf("s%d", i)), 128<<20)
			}
		}, []string{"-b", "4096"}, 0, nil},
		// 2,000 jars of 20 stored entries, each spanning two 128 KiB
		// blocks: every nested archive keeps a reader open for the tree's
		// life, so what a reader or its archive's directory holds is paid
		// 2,000 times (320 MiB of RSS when each kept its last blocks).
		{"nested-zips", func(t *testing.T, dir string) {
			noise := make([]byte, 6600)
			for i := range 2000 {
				var b bytes.Buffer
				zw := zip.NewWriter(&b)
				for j := range 20 {
					rand.Read(noise)
					w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("com/vendor/fw/v1_0_%d/Class%d.class", i, j), Method: zip.Store})
					if err != nil {
						t.Fatal(err)
					}
					w.Write(noise)
				}
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("lib%d-1.0.%d.jar", i, i)), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
		// 3,000 tar.gz files: each is peeled through a spill file.
		{"nested-gzip", func(t *testing.T, dir string) {
			noise := make([]byte, 2000)
			for i := range 3000 {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				tw := tar.NewWriter(zw)
				rand.Read(noise)
				tw.WriteHeader(&tar.Header{Name: "etc/fw-release", Mode: 0o644, Size: int64(len(noise))})
				tw.Write(noise)
				if tw.Close() != nil || zw.Close() != nil {
					t.Fatal("writing a tar.gz")
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("pkg%d-1.0.%d.tar.gz", i, i)), b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
		// 200,000 small files of distinct bytes in 400 directories named
		// for their release, as a /usr is: each is a record, a digest and
		// an opener, and the walk meets them all before it hashes one.
		// The walk's peak is about 124 bytes an entry here, the caches'
		// few MiB included, and 65 for the pair at the entry limit in
		// scripts/bench (129 MiB live for both trees of 1,042,443
		// entries); it was 441 when the walk held each entry as an Entry
		// with an opener of its own until its file was hashed.
		{"small-files", smallFiles, []string{"-no-duplicates"}, 150, nil},
		// The same files in a JFFS2 and a UBIFS image, whose walks index
		// the whole image before they list its first entry: JFFS2 holds a
		// reference for each node and each name found on flash (the
		// newest of a name wins, wherever it lies), UBIFS each leaf of its
		// index, packed as differences. About 160 and 128 bytes an entry
		// here; they held 634 and some 330 (at 100,000 entries) when that
		// index was maps of slices and each file had a closure.
		{"jffs2-small-files", smallFiles, nil, 200, func(dir, img string) *exec.Cmd {
			return exec.Command("mkfs.jffs2", "-l", "-e", "0x20000", "-r", dir, "-o", img)
		}},
		{"ubifs-small-files", smallFiles, nil, 160, func(dir, img string) *exec.Cmd {
			return exec.Command("mkfs.ubifs", "-m", "2048", "-e", "126976", "-c", "4000", "-r", dir, "-o", img)
		}},
		// A zip of 300,000 empty entries, 30 MB: archive/zip held a
		// *zip.File of some 300 bytes for each while the zip was walked
		// (a million of them held 437 MiB live); its central directory is
		// now read a record at a time.
		{"zip-entries", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, "many-2.4.1.zip"))
			if err != nil {
				t.Fatal(err)
			}
			zw := zip.NewWriter(f)
			for i := range 300000 {
				if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("d%03d/f%04d.txt", i/1000, i%1000), Method: zip.Store}); err != nil {
					t.Fatal(err)
				}
			}
			if zw.Close() != nil || f.Close() != nil {
				t.Fatal("writing the zip")
			}
		}, nil, 150, nil},
		{"empty-files", func(t *testing.T, dir string) {
			for i := range 100000 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
		{"symlinks", func(t *testing.T, dir string) {
			target := strings.Repeat("t", 100)
			for i := range 100000 {
				if err := os.Symlink(target, filepath.Join(dir, fmt.Sprintf("s%d", i))); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
		// 1,000 nested directories, a path of 2,000 bytes at the bottom.
		// (At 2,000 the unpacker's check of every entry's parents takes
		// seconds: time, not memory, that the depth controls.)
		{"deep", func(t *testing.T, dir string) {
			p := dir
			for range 1000 {
				p += "/d"
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 0, nil},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			dir := scratchDir(t)
			t0 := time.Now()
			s.build(t, dir)
			img := filepath.Join(t.TempDir(), s.name+".img")
			t1 := time.Now()
			args := append([]string{dir, img, "-noappend", "-comp", "gzip", "-no-progress", "-quiet"}, s.args...)
			pack := exec.Command("mksquashfs", args...)
			if s.pack != nil {
				pack = s.pack(dir, img)
			}
			if _, err := exec.LookPath(pack.Args[0]); err != nil {
				t.Skipf("%s is not installed", pack.Args[0])
			}
			if out, err := pack.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", pack.Args[0], err, out)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBound$", "-test.count=1", "-test.v")
			// A collector that marks while the walk allocates counts
			// what was allocated meanwhile as live: on a busy machine,
			// 20% more than on an idle one. Cycles at a tenth of the
			// heap keep that overcount small, whatever else runs.
			cmd.Env = append(os.Environ(), memoryImageEnv+"="+img, "GOGC=10")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			if !ok {
				t.Skip("no rusage on this platform")
			}
			peak := ru.Maxrss << 10 // KiB on Linux
			t.Logf("%s: image of %d bytes, peak RSS %.1f MiB, %s; tree %v, pack %v, unpack %v", s.name, st.Size(), float64(peak)/(1<<20), childSummary(out),
				t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
			if peak > memoryBound {
				t.Errorf("%s: peak RSS %.1f MiB is over the %d MiB bound", s.name, float64(peak)/(1<<20), memoryBound>>20)
			}
			if s.perEntry > 0 {
				var entries, live int64
				if _, err := fmt.Sscanf(childSummary(out), "%d entries", &entries); err != nil || entries == 0 {
					t.Fatalf("%s: no entry count in the child's summary %q", s.name, childSummary(out))
				}
				if _, err := fmt.Sscanf(childLine(out, "memory-child-live: "), "%d", &live); err != nil {
					t.Fatalf("%s: the child printed no live heap", s.name)
				}
				t.Logf("%s: %d entries, live heap at most %.1f MiB, %d bytes an entry", s.name, entries, float64(live)/(1<<20), live/entries)
				if live/entries > int64(s.perEntry) {
					t.Errorf("%s: %d bytes of live heap an entry, want at most %d", s.name, live/entries, s.perEntry)
				}
			}
		})
	}
}

// smallFiles makes 200,000 small files of distinct bytes in 400
// directories named for their release, as a /usr is.
func smallFiles(t *testing.T, dir string) {
	for d := range 400 {
		sub := filepath.Join(dir, fmt.Sprintf("usr/share/pkg%d-2.4.%d/data", d, d%9))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 500 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file-%04d.txt", f)), fmt.Appendf(nil, "%d %d\n", d, f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// scratchDir is an empty directory for a tree to pack: in /dev/shm when
// there is one, where making 100,000 files takes a second rather than the
// ten a disk's file system may take, else in the test's temporary directory.
func scratchDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "fwvet-memory-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// sparse makes a file of size bytes with no data: a hole.
func sparse(t *testing.T, name string, size int64) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// memoryChild unpacks img with the default limits and prints what came of
// it. A limit hit is the expected end of a hostile shape, not a failure.
func memoryChild(t *testing.T, img string) {
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	go watchRSS(1 << 30)
	var peak atomic.Uint64
	go watchLive(&peak)
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: filepath.Base(img), Path: img, Size: st.Size()})
	if err != nil {
		fmt.Printf("memory-child: error: %v\n", err)
		return
	}
	defer tree.Close()
	reason := ""
	if len(tree.Problems) > 0 {
		reason = tree.Problems[0].Reason
	}
	fmt.Printf("memory-child: %d entries, %d problems %q\n", tree.Len(), len(tree.Problems), reason)
	fmt.Printf("memory-child-live: %d\n", peak.Load())
	runtime.KeepAlive(tree)
}

// watchLive keeps in peak the most that the heap held live, as the
// collector measured it at its cycles' ends.
func watchLive(peak *atomic.Uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watchRSS ends the process when its resident memory passes max, so that a
// shape that breaks the bound fails its test rather than the machine.
func watchRSS(max int64) {
	page := int64(os.Getpagesize())
	for {
		b, err := os.ReadFile("/proc/self/statm")
		if err != nil {
			return
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return
		}
		pages, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return
		}
		if pages*page > max {
			fmt.Printf("memory-child: resident memory of %d MiB, over %d MiB: stopped\n", pages*page>>20, max>>20)
			os.Exit(3)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childSummary is the line memoryChild printed.
func childSummary(out []byte) string {
	if s := childLine(out, "memory-child: "); s != "" {
		return s
	}
	return "no summary"
}

// childLine is what follows prefix on the child's first line that has it.
func childLine(out []byte, prefix string) string {
	for _, l := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(l, prefix); ok {
			return s
		}
	}
	return ""
}
