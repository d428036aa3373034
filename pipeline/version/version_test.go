package version

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		// semantic versions
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.2.0", "1.10.0", -1}, // numbers, not strings
		{"2.0.0", "1.99.99", 1},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-beta", -1},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0+build.5", "1.0.0+build.6", 0}, // build metadata does not order
		{"1.0.0+20240101", "1.0.0", 0},
		// dotted numbers of different lengths
		{"1.0.1", "1.0.1.1", -1},
		{"1.0.1.1", "1.0.1", 1},
		{"1.0.1.1", "1.0.2", -1},
		{"10", "9.9.9.9", 1},
		// pre-release words
		{"1.0-rc1", "1.0", -1},
		{"1.0-rc1", "1.0.1", -1}, // a pre-release word before any number
		{"1.0-rc1", "1.0.0", -1},
		{"21.02-SNAPSHOT", "21.02.3", -1},
		{"1.0", "1.0.0", 0}, // trailing zeros do not order
		{"1.0.0.0", "1", 0},
		{"1.0", "1.0-rc1", 1},
		{"1.0-beta", "1.0-rc1", -1},
		{"1.0-alpha", "1.0-beta", -1},
		{"1.0-rc1", "1.0-rc2", -1},
		{"1.0-RC1", "1.0-rc1", 0}, // words are compared without case
		{"1.0-dev", "1.0", -1},
		{"1.0-snapshot", "1.0", -1},
		{"1.0-rc1", "1.0-final", -1}, // a release word after a pre-release word
		// vendor forms
		{"V1.0.0.12_1.0.3", "V1.0.0.13_1.0.1", -1},
		{"V1.0.0.13_1.0.1", "V1.0.0.12_1.0.3", 1},
		{"V1.0.0.12_1.0.3", "V1.0.0.12_1.0.4", -1},
		{"V1.0.0.12", "1.0.0.12", 0}, // prefix on one side only is dropped
		{"1.0.0.12", "V1.0.0.12", 0},
		{"V1.0.0.12", "1.0.0.13", -1},
		{"v1.0.0.12", "V1.0.0.12", 0},
		{"R7.2.1-b5", "R7.2.1-b6", -1},
		{"R7.2.1-b6", "R7.2.1-b5", 1},
		{"R7.2.1-b5", "R7.2.2-b1", -1},
		// leading zeros
		{"01.02.03", "1.2.3", 0},
		{"1.010", "1.9", 1},
		{"1.00", "1.0", 0},
		{"0.0.0", "0.0.0", 0},
		{"2024.01.15", "2024.1.15", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+"_vs_"+tt.b, func(t *testing.T) {
			got, err := Compare(tt.a, tt.b)
			if err != nil {
				t.Fatalf("Compare(%q, %q) error: %v", tt.a, tt.b, err)
			}
			if got != tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			// The order must be antisymmetric.
			rev, err := Compare(tt.b, tt.a)
			if err != nil {
				t.Fatalf("Compare(%q, %q) error: %v", tt.b, tt.a, err)
			}
			if rev != -tt.want {
				t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, rev, -tt.want)
			}
		})
	}
}

func TestCompareErrors(t *testing.T) {
	tests := []struct {
		name, a, b string
		wantMsg    string
	}{
		{"no digits left", "abc", "1.0", "no number"},
		{"no digits right", "1.0", "latest", "no number"},
		{"empty", "", "1.0", "no number"},
		{"both empty", "", "", "no number"},
		{"separators only", "-._", "1", "no number"},
		{"word faces number", "1.0a", "1.0.1", "cannot be ordered"},
		{"number faces word", "1.0.1", "1.0a", "cannot be ordered"},
		{"different prefix words later", "V1.0.x", "V1.0.1", "cannot be ordered"},
		{"number too large", "99999999999999999999999", "1", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compare(tt.a, tt.b)
			if err == nil {
				t.Fatalf("Compare(%q, %q) = %d, want an error", tt.a, tt.b, got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Compare(%q, %q) error %q, want it to mention %q", tt.a, tt.b, err, tt.wantMsg)
			}
			if got != 0 {
				t.Errorf("Compare(%q, %q) = %d with an error, want 0", tt.a, tt.b, got)
			}
		})
	}
}

// file makes a regular file entry whose bytes are content.
func file(key, path, content string) *pipeline.Entry {
	e := &pipeline.Entry{Path: path, Key: key, Type: pipeline.TypeFile, Mode: 0o644, Size: int64(len(content))}
	e.SetOpen(func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(content)), nil
	})
	return e
}

// at makes a top-level regular file entry (Key == Path).
func at(path, content string) *pipeline.Entry { return file(path, path, content) }

func TestFromTree(t *testing.T) {
	tests := []struct {
		name       string
		entries    []*pipeline.Entry
		want       string // "" means nil
		wantSource string
		wantKey    string
	}{
		{
			name:       "os-release quoted VERSION_ID",
			entries:    []*pipeline.Entry{at("/etc/os-release", "NAME=\"Acme\"\nVERSION_ID=\"1.2.3\"\nVERSION=\"1.2.3 (Bolt)\"\n")},
			want:       "1.2.3",
			wantSource: "/etc/os-release",
		},
		{
			name:       "os-release unquoted VERSION_ID",
			entries:    []*pipeline.Entry{at("/etc/os-release", "NAME=Acme\nVERSION_ID=21.02.3\n")},
			want:       "21.02.3",
			wantSource: "/etc/os-release",
		},
		{
			name:       "os-release single quoted",
			entries:    []*pipeline.Entry{at("/etc/os-release", "VERSION_ID='4.5'\n")},
			want:       "4.5",
			wantSource: "/etc/os-release",
		},
		{
			name:       "VERSION_ID preferred over an earlier VERSION",
			entries:    []*pipeline.Entry{at("/etc/os-release", "VERSION=\"9.9 (Old)\"\nVERSION_ID=1.0\n")},
			want:       "1.0",
			wantSource: "/etc/os-release",
		},
		{
			name:       "VERSION when there is no VERSION_ID",
			entries:    []*pipeline.Entry{at("/etc/os-release", "NAME=x\nVERSION=\"3.1 (LTS)\"\n")},
			want:       "3.1 (LTS)",
			wantSource: "/etc/os-release",
		},
		{
			name:       "comments and blank lines ignored, first value wins",
			entries:    []*pipeline.Entry{at("/etc/os-release", "# VERSION_ID=0.0.1\n\n  VERSION_ID = 2.0 \nVERSION_ID=3.0\n")},
			want:       "2.0",
			wantSource: "/etc/os-release",
		},
		{
			name:       "usr/lib os-release when /etc has none",
			entries:    []*pipeline.Entry{at("/usr/lib/os-release", "VERSION_ID=5\n")},
			want:       "5",
			wantSource: "/usr/lib/os-release",
		},
		{
			name: "etc os-release as a symlink falls back to usr/lib",
			entries: []*pipeline.Entry{
				{Path: "/etc/os-release", Key: "/etc/os-release", Type: pipeline.TypeSymlink, LinkTarget: "../usr/lib/os-release"},
				at("/usr/lib/os-release", "VERSION_ID=6.1\n"),
			},
			want:       "6.1",
			wantSource: "/usr/lib/os-release",
		},
		{
			name:       "openwrt_release DISTRIB_RELEASE",
			entries:    []*pipeline.Entry{at("/etc/openwrt_release", "DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='19.07.7'\nDISTRIB_REVISION='r11306'\n")},
			want:       "19.07.7",
			wantSource: "/etc/openwrt_release",
		},
		{
			name:       "fw-release VERSION",
			entries:    []*pipeline.Entry{at("/etc/fw-release", "PRODUCT=RT-3200\nVERSION=1.0.1\n")},
			want:       "1.0.1",
			wantSource: "/etc/fw-release",
		},
		{
			name:       "fw-release with export",
			entries:    []*pipeline.Entry{at("/etc/fw-release", "export VERSION=\"V1.0.0.12_1.0.3\"\n")},
			want:       "V1.0.0.12_1.0.3",
			wantSource: "/etc/fw-release",
		},
		{
			name: "os-release before openwrt_release",
			entries: []*pipeline.Entry{
				at("/etc/openwrt_release", "DISTRIB_RELEASE='19.07.7'\n"),
				at("/etc/os-release", "VERSION_ID=21.02\n"),
			},
			want:       "21.02",
			wantSource: "/etc/os-release",
		},
		{
			name: "openwrt_release before fw-release",
			entries: []*pipeline.Entry{
				at("/etc/fw-release", "VERSION=9.9\n"),
				at("/etc/openwrt_release", "DISTRIB_RELEASE='19.07.7'\n"),
			},
			want:       "19.07.7",
			wantSource: "/etc/openwrt_release",
		},
		{
			name: "os-release without a version falls through",
			entries: []*pipeline.Entry{
				at("/etc/os-release", "NAME=Acme\nID=acme\n"),
				at("/etc/openwrt_release", "DISTRIB_RELEASE=18.06\n"),
			},
			want:       "18.06",
			wantSource: "/etc/openwrt_release",
		},
		{
			name: "empty VERSION_ID falls back to VERSION",
			entries: []*pipeline.Entry{
				at("/etc/os-release", "VERSION_ID=\"\"\nVERSION=7\n"),
			},
			want:       "7",
			wantSource: "/etc/os-release",
		},
		{
			name: "outermost file system wins",
			entries: []*pipeline.Entry{
				file("rootfs.squashfs/overlay.tar/etc/os-release", "/etc/os-release", "VERSION_ID=3\n"),
				file("rootfs.squashfs/etc/os-release", "/etc/os-release", "VERSION_ID=2\n"),
			},
			want:       "2",
			wantSource: "/etc/os-release",
			wantKey:    "rootfs.squashfs/etc/os-release",
		},
		{
			name: "outermost file system wins even when its key sorts last",
			entries: []*pipeline.Entry{
				file("rootfs.squashfs/etc/os-release", "/etc/os-release", "VERSION_ID=2\n"),
				file("boot.img/initramfs.cpio/etc/os-release", "/etc/os-release", "VERSION_ID=3\n"),
			},
			want:       "2",
			wantSource: "/etc/os-release",
			wantKey:    "rootfs.squashfs/etc/os-release",
		},
		{
			name:    "no release file",
			entries: []*pipeline.Entry{at("/etc/passwd", "root:x:0:0::/root:/bin/sh\n"), at("/bin/busybox", "\x7fELF")},
		},
		{
			name:    "release file below /etc is not read",
			entries: []*pipeline.Entry{at("/etc/sub/fw-release", "VERSION=1.0\n")},
		},
		{
			name:    "other /etc files with VERSION lines are not read",
			entries: []*pipeline.Entry{at("/etc/environment", "VERSION=5.0\n"), at("/etc/release.conf", "VERSION=6.0\n")},
		},
		{
			name:    "release file without a version",
			entries: []*pipeline.Entry{at("/etc/lsb-release", "DISTRIB_ID=Acme\n")},
		},
		{
			name: "empty tree",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := pipeline.NewTree(tt.entries, nil)
			v, err := FromTree(context.Background(), tree)
			if err != nil {
				t.Fatalf("FromTree: %v", err)
			}
			if tt.want == "" {
				if v != nil {
					t.Fatalf("FromTree = %+v, want nil", v)
				}
				return
			}
			if v == nil {
				t.Fatalf("FromTree = nil, want %q", tt.want)
			}
			if v.Value != tt.want || v.Source != tt.wantSource {
				t.Errorf("FromTree = %q from %q, want %q from %q", v.Value, v.Source, tt.want, tt.wantSource)
			}
			wantKey := tt.wantKey
			if wantKey == "" {
				wantKey = tt.wantSource
			}
			if v.Key != wantKey {
				t.Errorf("FromTree key = %q, want %q", v.Key, wantKey)
			}
		})
	}
}

func TestFromTreeReadError(t *testing.T) {
	boom := errors.New("boom")
	e := &pipeline.Entry{Path: "/etc/os-release", Key: "/etc/os-release", Type: pipeline.TypeFile}
	e.SetOpen(func(context.Context) (io.ReadCloser, error) { return nil, boom })
	v, err := FromTree(context.Background(), pipeline.NewTree([]*pipeline.Entry{e}, nil))
	if !errors.Is(err, boom) {
		t.Fatalf("FromTree = %v, %v; want the open error", v, err)
	}
	if v != nil {
		t.Errorf("FromTree returned %+v with an error", v)
	}
}
