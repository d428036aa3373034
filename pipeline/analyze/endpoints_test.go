package analyze

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestEndpoints(t *testing.T) {
	const conf = "# update settings\nserver=update.example.com\ninterval=3600\n"
	mod := func(p, old, cur string) *pipeline.Change {
		return changed(fileEntry(p, old, 0o644), fileEntry(p, cur, 0o644), "content")
	}
	unchanged := fileEntry("/usr/lib/libvendor.so", "\x7fELF\x02\x01\x01\x00\x00ntp=time.vendor-ntp.net\x00fallback 203.0.113.80\x00", 0o644)

	type want struct {
		path      string
		endpoints []string
	}
	tests := []struct {
		name     string
		changes  []*pipeline.Change
		baseline []*pipeline.Entry // unchanged baseline files, besides the changes' old sides
		want     []want
	}{
		{
			name:    "new IP address in a modified config",
			changes: []*pipeline.Change{mod("/etc/config/update", conf, conf+"backup=203.0.113.9\n")},
			want:    []want{{"/etc/config/update", []string{"203.0.113.9"}}},
		},
		{
			name:    "new URL and host in a modified file",
			changes: []*pipeline.Change{mod("/etc/config/update", conf, conf+"url=https://c2.evil-example.org/a.sh\nntp=pool.ntp.org\n")},
			want:    []want{{"/etc/config/update", []string{"https://c2.evil-example.org/a.sh", "pool.ntp.org"}}},
		},
		{
			name:    "new IPv6 address in an added file",
			changes: []*pipeline.Change{added(fileEntry("/etc/resolv.conf", "nameserver 2001:db8::53\n", 0o644))},
			want:    []want{{"/etc/resolv.conf", []string{"2001:db8::53"}}},
		},
		{
			name:    "new endpoint in an added binary",
			changes: []*pipeline.Change{added(fileEntry("/usr/bin/agent", "\x7fELF\x02\x01\x01\x00\x00\x00beacon.example.net:8443\x00\x01", 0o755))},
			want:    []want{{"/usr/bin/agent", []string{"beacon.example.net"}}},
		},
		{
			name:    "endpoint already in the old version",
			changes: []*pipeline.Change{mod("/etc/config/update", conf, "server=update.example.com\ninterval=60\n")},
		},
		{
			name:    "host compared without case",
			changes: []*pipeline.Change{mod("/etc/config/update", conf, "server=UPDATE.Example.COM\n")},
		},
		{
			name: "endpoint moved from a removed file to an added file",
			changes: []*pipeline.Change{
				removed(fileEntry("/etc/old.conf", "url=http://198.51.100.4/fw\nhost=mirror.example.org\n", 0o644)),
				added(fileEntry("/etc/new.conf", "host=mirror.example.org\nurl=http://198.51.100.4/fw\n", 0o644)),
			},
		},
		{
			name:     "endpoint in an unchanged baseline file",
			changes:  []*pipeline.Change{added(fileEntry("/etc/ntp.conf", "server time.vendor-ntp.net\nserver 203.0.113.80\n", 0o644))},
			baseline: []*pipeline.Entry{unchanged},
		},
		{
			name:     "only part of the endpoints in the baseline",
			changes:  []*pipeline.Change{added(fileEntry("/etc/ntp.conf", "server time.vendor-ntp.net\nserver 203.0.113.81\n", 0o644))},
			baseline: []*pipeline.Entry{unchanged},
			want:     []want{{"/etc/ntp.conf", []string{"203.0.113.81"}}},
		},
		{
			name: "two files, each with its own",
			changes: []*pipeline.Change{
				added(fileEntry("/etc/a.conf", "peer=198.51.100.1\n", 0o644)),
				mod("/etc/b.conf", "x=1\n", "x=1\npeer=sync.example.io\n"),
			},
			want: []want{{"/etc/a.conf", []string{"198.51.100.1"}}, {"/etc/b.conf", []string{"sync.example.io"}}},
		},
		{
			name: "documentation paths ignored",
			changes: []*pipeline.Change{
				added(fileEntry("/usr/share/doc/curl/README", "see https://curl.se/docs/ and 198.51.100.200\n", 0o644)),
				added(fileEntry("/usr/share/man/man1/agent.1", ".SH SEE ALSO\nhttps://agent.example.com/manual\n", 0o644)),
				added(fileEntry("/usr/share/locale/de/LC_MESSAGES/agent.mo", "http://translations.example.org/de\n", 0o644)),
			},
		},
		{
			name:    "versions, loopback and e-mail are no endpoints",
			changes: []*pipeline.Change{added(fileEntry("/etc/banner", "fw 1.2.3.4-rc1 on 127.0.0.1, mail root@mail.example.com\n", 0o644))},
		},
		{
			name:    "removed file",
			changes: []*pipeline.Change{removed(fileEntry("/etc/old.conf", "server=198.51.100.9\n", 0o644))},
		},
		{
			name:    "metadata change",
			changes: []*pipeline.Change{changed(fileEntry("/etc/x.conf", "server=198.51.100.9\n", 0o644), fileEntry("/etc/x.conf", "server=198.51.100.9\n", 0o600), "mode")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := scanned(t, tt.changes...)
			var base []*pipeline.Entry
			for _, ch := range tt.changes {
				if ch.Old != nil {
					base = append(base, ch.Old)
				}
			}
			in.Baseline = pipeline.NewTree(append(base, tt.baseline...), nil)
			got := analyzeWith(t, Endpoints{}, in)
			if len(got) != len(tt.want) {
				t.Fatalf("%d findings, want %d: %s", len(got), len(tt.want), marshal(t, got))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.ID != pipeline.IDEndpointAdded || f.Severity != pipeline.SeverityMedium || f.Path != w.path {
					t.Errorf("finding %d = %s/%s on %s, want endpoint-added/medium on %s", i, f.ID, f.Severity, f.Path, w.path)
				}
				if !reflect.DeepEqual(f.Evidence["endpoints"], w.endpoints) {
					t.Errorf("finding %d endpoints = %q, want %q", i, f.Evidence["endpoints"], w.endpoints)
				}
				var content string
				for _, ch := range tt.changes {
					if ch.Path == w.path {
						content = readAll(t, ch.New)
					}
				}
				offsets, _ := f.Evidence["offsets"].(map[string]int64)
				if len(offsets) != len(w.endpoints) {
					t.Errorf("finding %d offsets = %v, want one per endpoint", i, offsets)
				}
				for _, ep := range w.endpoints {
					want := int64(strings.Index(content, ep))
					if off, ok := offsets[ep]; !ok || off != want {
						t.Errorf("finding %d offset of %s = %v (%t), want %d", i, ep, off, ok, want)
					}
				}
				contains(t, "message", f.Message, "new endpoints: "+strings.Join(w.endpoints, ", "))
				contains(t, "inspect", f.Evidence["inspect"].(string), "strings -t x DIR"+w.path, w.endpoints[0])
			}
		})
	}
}

// TestEndpointsSearchAcrossReads: searchTree reads an unchanged baseline
// file in pieces; a needle cut by the end of a piece is still found.
func TestEndpointsSearchAcrossReads(t *testing.T) {
	const ep = "far-away.example.net"
	for _, at := range []int{0, 256<<10 - 7, 256<<10 + len(ep) - 3, 600 << 10} {
		b := make([]byte, 700<<10)
		copy(b[at:], ep)
		big := fileEntry("/usr/lib/firmware/big.bin", string(b), 0o644)
		ch := added(fileEntry("/etc/peer.conf", "peer="+ep+"\n", 0o644))
		in := scanned(t, ch)
		in.Baseline = pipeline.NewTree([]*pipeline.Entry{big}, nil)
		if got := analyzeWith(t, Endpoints{}, in); len(got) != 0 {
			t.Errorf("needle at %d in a baseline file not found: %s", at, marshal(t, got))
		}
	}
}

// TestEndpointsSpellingInUnchangedBaseline: endpoints are compared as
// found (host names without case, IPv6 addresses in their canonical form)
// with the old side of a changed file; an unchanged baseline file is
// searched for the canonical bytes instead, so the same endpoint written
// otherwise there counts as new, depending only on which file held it.
func TestEndpointsSpellingInUnchangedBaseline(t *testing.T) {
	tests := []struct{ name, baseline, candidate string }{
		{"host name in another case", "server=Update.Example.COM\n", "peer=update.example.com\n"},
		{"IPv6 address in upper case", "dns=2001:DB8::53\n", "dns=2001:db8::53\n"},
		{"IPv6 address written in full", "dns=2001:0db8:0000:0000:0000:0000:0000:0053\n", "dns=2001:db8::53\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Control: the same spelling on the old side of a changed file is known.
			mod := changed(fileEntry("/etc/peer.conf", tt.baseline, 0o644), fileEntry("/etc/peer.conf", tt.candidate, 0o644), "content")
			in := scanned(t, mod)
			in.Baseline = pipeline.NewTree([]*pipeline.Entry{mod.Old}, nil)
			none(t, analyzeWith(t, Endpoints{}, in))

			ch := added(fileEntry("/etc/peer.conf", tt.candidate, 0o644))
			in = scanned(t, ch)
			in.Baseline = pipeline.NewTree([]*pipeline.Entry{fileEntry("/etc/vendor.conf", tt.baseline, 0o644)}, nil)
			none(t, analyzeWith(t, Endpoints{}, in))
		})
	}
}

func readAll(t *testing.T, e *pipeline.Entry) string {
	t.Helper()
	b, err := readText(t.Context(), e, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
