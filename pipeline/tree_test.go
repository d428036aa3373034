package pipeline

import "testing"

func TestModeType(t *testing.T) {
	for _, tt := range []struct {
		mode uint32
		want EntryType
		ok   bool
	}{
		{0o100644, TypeFile, true}, {0o104755, TypeFile, true}, {0o040755, TypeDir, true},
		{0o120777, TypeSymlink, true}, {0o020600, TypeChar, true}, {0o060640, TypeBlock, true},
		{0o010600, TypeFIFO, true}, {0o140755, TypeSocket, true},
		{0o000644, "", false}, {0o170000, "", false}, {0o030000, "", false},
	} {
		if got, ok := ModeType(tt.mode); got != tt.want || ok != tt.ok {
			t.Errorf("ModeType(%#o) = %q, %v; want %q, %v", tt.mode, got, ok, tt.want, tt.ok)
		}
	}
}

func TestChainKey(t *testing.T) {
	for _, tt := range []struct {
		chain []string
		want  string
	}{
		{[]string{"fw.bin", "squashfs"}, ""},
		{[]string{"fw.bin", "raw", "/squashfs-1", "squashfs"}, "/squashfs-1"},
		{[]string{"fw.tar.gz", "gzip", "tar", "/a.itb", "fit", "/images/ramdisk-1", "squashfs"}, "/a.itb\x00/images/ramdisk-1"},
		// The artifact's own name is never a key, whatever it looks like.
		{[]string{"/abs/fw.bin", "tar", "/x.tar", "tar"}, "/x.tar"},
	} {
		if got := ChainKey(tt.chain); got != tt.want {
			t.Errorf("ChainKey(%q) = %q, want %q", tt.chain, got, tt.want)
		}
	}
}
