package analyze

import (
	"crypto/ed25519"
	"crypto/sha256"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/fwvet/fwvet/pipeline"
)

// sshKey is a fresh Ed25519 SSH public key, as an authorized_keys line
// body ("ssh-ed25519 AAAA…"), and its SHA-256 fingerprint.
func sshKey(t *testing.T, seed string) (line, fingerprint string) {
	t.Helper()
	s := sha256.Sum256([]byte(seed))
	priv := ed25519.NewKeyFromSeed(s[:])
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), ssh.FingerprintSHA256(pub)
}

func TestAuthorizedKeys(t *testing.T) {
	oldKey, _ := sshKey(t, "admin")
	newKey, newFP := sshKey(t, "intruder")
	otherKey, otherFP := sshKey(t, "vendor")
	base := "# managed by acme\n" + oldKey + " admin@acme\n"

	type want struct {
		fp, comment string
		line        int
		options     []string
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		want []want
	}{
		{
			name: "new key in a user's authorized_keys",
			ch:   changed(fileEntry("/home/x/.ssh/authorized_keys", base, 0o600), fileEntry("/home/x/.ssh/authorized_keys", base+newKey+" support@vendor\n", 0o600), "content"),
			want: []want{{fp: newFP, comment: "support@vendor", line: 3}},
		},
		{
			name: "new key in Dropbear's authorized_keys",
			ch:   changed(fileEntry("/etc/dropbear/authorized_keys", base, 0o600), fileEntry("/etc/dropbear/authorized_keys", newKey+"\n"+base, 0o600), "content"),
			want: []want{{fp: newFP, line: 1}},
		},
		{
			name: "new key in root's authorized_keys2",
			ch:   added(fileEntry("/root/.ssh/authorized_keys2", "\n"+newKey+" root@factory\n", 0o600)),
			want: []want{{fp: newFP, comment: "root@factory", line: 2}},
		},
		{
			name: "authorized_keys in a non-standard place",
			ch:   added(fileEntry("/opt/vendor/etc/authorized_keys", newKey+"\n", 0o644)),
			want: []want{{fp: newFP, line: 1}},
		},
		{
			name: "key with options",
			ch: changed(fileEntry("/root/.ssh/authorized_keys", base, 0o600),
				fileEntry("/root/.ssh/authorized_keys", base+`command="/bin/sh -i",no-pty,from="198.51.100.0/24" `+newKey+" diag\n", 0o600), "content"),
			want: []want{{fp: newFP, comment: "diag", line: 3, options: []string{`command="/bin/sh -i"`, "no-pty", `from="198.51.100.0/24"`}}},
		},
		{
			name: "two new keys, garbage lines ignored",
			ch: changed(fileEntry("/root/.ssh/authorized_keys", base, 0o600),
				fileEntry("/root/.ssh/authorized_keys", base+"not a key at all\nssh-rsa AAAAnotbase64!!\n"+newKey+"\n"+"  "+otherKey+" vendor  \n", 0o600), "content"),
			want: []want{{fp: newFP, line: 5}, {fp: otherFP, comment: "vendor", line: 6}},
		},
		{
			name: "existing key with a new comment and options is not new",
			ch: changed(fileEntry("/root/.ssh/authorized_keys", base, 0o600),
				fileEntry("/root/.ssh/authorized_keys", "no-agent-forwarding "+oldKey+" renamed\n", 0o600), "content"),
		},
		{
			name: "existing key not reported",
			ch: changed(fileEntry("/root/.ssh/authorized_keys", base, 0o600),
				fileEntry("/root/.ssh/authorized_keys", base+"# "+newKey+" commented out\n\n", 0o600), "content"),
		},
		{
			name: "key removed",
			ch:   changed(fileEntry("/root/.ssh/authorized_keys", base, 0o600), fileEntry("/root/.ssh/authorized_keys", "# empty\n", 0o600), "content"),
		},
		{
			name: "metadata only",
			ch:   changed(fileEntry("/root/.ssh/authorized_keys", base+newKey+"\n", 0o600), fileEntry("/root/.ssh/authorized_keys", base+newKey+"\n", 0o644), "mode"),
		},
		{
			name: "a key in a file not named authorized_keys",
			ch:   added(fileEntry("/root/.ssh/id_ed25519.pub", newKey+"\n", 0o644)),
		},
		{
			name: "authorized_keys removed",
			ch:   removed(fileEntry("/root/.ssh/authorized_keys", base, 0o600)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, SSH{}, scanned(t, tt.ch))
			if len(got) != len(tt.want) {
				t.Fatalf("%d findings, want %d: %s", len(got), len(tt.want), marshal(t, got))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.ID != pipeline.IDAuthorizedKeyAdded || f.Severity != pipeline.SeverityCritical {
					t.Errorf("finding %d = %s/%s, want authorized-key-added/critical", i, f.ID, f.Severity)
				}
				if f.Path != tt.ch.Path || f.Key != tt.ch.Key {
					t.Errorf("finding %d is about %q", i, f.Path)
				}
				if f.Evidence["fingerprint"] != w.fp || f.Evidence["key_type"] != "ssh-ed25519" {
					t.Errorf("finding %d key %v %v, want ssh-ed25519 %s", i, f.Evidence["key_type"], f.Evidence["fingerprint"], w.fp)
				}
				if f.Evidence["comment"] != w.comment || f.Evidence["line"] != w.line {
					t.Errorf("finding %d comment %q line %v, want %q line %d", i, f.Evidence["comment"], f.Evidence["line"], w.comment, w.line)
				}
				opts, has := f.Evidence["options"]
				if w.options == nil && has || w.options != nil && !reflect.DeepEqual(opts, w.options) {
					t.Errorf("finding %d options = %#v, want %#v", i, opts, w.options)
				}
				contains(t, "message", f.Message, "new ssh-ed25519 key "+w.fp)
				if w.comment != "" {
					contains(t, "message", f.Message, "("+w.comment+")")
				}
				contains(t, "inspect", f.Evidence["inspect"].(string), "ssh-keygen -lf DIR"+tt.ch.Path)
			}
		})
	}
}

func TestSSHServerSettings(t *testing.T) {
	const sshd = "/etc/ssh/sshd_config"
	const hardened = "Port 22\nPermitRootLogin no\nPasswordAuthentication no\nPermitEmptyPasswords no\n"
	const uci = "config dropbear\n\toption PasswordAuth 'on'\n\toption RootPasswordAuth 'off'\n\toption Port '22'\n"
	mod := func(p, old, cur string) *pipeline.Change {
		return changed(fileEntry(p, old, 0o644), fileEntry(p, cur, 0o644), "content")
	}
	type want struct {
		msg []string
		ev  map[string]any
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		want *want
	}{
		{
			name: "PermitRootLogin no to yes",
			ch:   mod(sshd, hardened, strings.Replace(hardened, "PermitRootLogin no", "PermitRootLogin yes", 1)),
			want: &want{msg: []string{"SSH server now allows: permitrootlogin yes (was no)"},
				ev: map[string]any{"permitrootlogin": map[string]string{"old": "no", "new": "yes"}}},
		},
		{
			name: "PasswordAuthentication no to yes",
			ch:   mod(sshd, hardened, strings.Replace(hardened, "PasswordAuthentication no", "PasswordAuthentication yes", 1)),
			want: &want{msg: []string{"passwordauthentication yes (was no)"},
				ev: map[string]any{"passwordauthentication": map[string]string{"old": "no", "new": "yes"}}},
		},
		{
			name: "PermitEmptyPasswords, case and blanks as sshd reads them",
			ch:   mod(sshd, hardened, strings.Replace(hardened, "PermitEmptyPasswords no", "  permitemptypasswords   YES", 1)),
			want: &want{msg: []string{"permitemptypasswords yes (was no)"},
				ev: map[string]any{"permitemptypasswords": map[string]string{"old": "no", "new": "yes"}}},
		},
		{
			name: "setting removed falls back to the default",
			ch:   mod(sshd, hardened, strings.Replace(hardened, "PasswordAuthentication no\n", "", 1)),
			want: &want{msg: []string{"passwordauthentication yes (was no)"}},
		},
		{
			name: "several at once",
			ch:   mod(sshd, hardened, "PermitRootLogin yes\nPasswordAuthentication yes\n"),
			want: &want{msg: []string{"permitrootlogin yes (was no), passwordauthentication yes (was no)"}},
		},
		{
			name: "first value wins: a later yes is ignored",
			ch:   mod(sshd, hardened, hardened+"PermitRootLogin yes\n"),
		},
		{
			name: "first value wins: a yes put first counts",
			ch:   mod(sshd, hardened, "PermitRootLogin yes\n"+hardened),
			want: &want{msg: []string{"permitrootlogin yes (was no)"}},
		},
		{
			name: "Match blocks ignored",
			ch:   mod(sshd, hardened, hardened+"Match Address 10.0.0.0/8\n\tPermitRootLogin yes\n\tPasswordAuthentication yes\n"),
		},
		{
			name: "AuthorizedKeysFile moved",
			ch:   mod(sshd, hardened, hardened+"AuthorizedKeysFile /var/lib/keys/%u\n"),
			want: &want{msg: []string{"authorizedkeysfile /var/lib/keys/%u (was .ssh/authorized_keys .ssh/authorized_keys2)"}},
		},
		{
			name: "drop-in directory",
			ch:   added(fileEntry("/etc/ssh/sshd_config.d/50-vendor.conf", "PermitRootLogin yes\n", 0o644)),
			want: &want{msg: []string{"permitrootlogin yes (was prohibit-password)"}},
		},
		{
			name: "new file judged against the defaults",
			ch:   added(fileEntry(sshd, "PermitRootLogin yes\nPasswordAuthentication yes\n", 0o644)),
			want: &want{msg: []string{"permitrootlogin yes (was prohibit-password)"},
				ev: map[string]any{"permitrootlogin": map[string]string{"old": "prohibit-password", "new": "yes"}}},
		},
		{name: "new file that keeps the defaults", ch: added(fileEntry(sshd, "Port 22\nPasswordAuthentication yes\n", 0o644))},
		{name: "new hardened file", ch: added(fileEntry(sshd, hardened, 0o644))},
		{name: "closing a door", ch: mod(sshd, "PermitRootLogin yes\n", "PermitRootLogin without-password\n")},
		{name: "comment that says yes", ch: mod(sshd, hardened, hardened+"# PermitRootLogin yes\n")},
		{name: "metadata only", ch: changed(fileEntry(sshd, hardened, 0o600), fileEntry(sshd, "PermitRootLogin yes\n", 0o644), "mode")},
		{
			name: "OpenWrt dropbear RootPasswordAuth off to on",
			ch:   mod("/etc/config/dropbear", uci, strings.Replace(uci, "RootPasswordAuth 'off'", "RootPasswordAuth 'on'", 1)),
			want: &want{msg: []string{"Dropbear now allows: RootPasswordAuth"}, ev: map[string]any{"options_enabled": []string{"RootPasswordAuth"}}},
		},
		{
			name: "OpenWrt dropbear option added, unquoted 1",
			ch:   mod("/etc/config/dropbear", uci, uci+"\toption GatewayPorts 1\n"),
			want: &want{msg: []string{"Dropbear now allows: GatewayPorts"}, ev: map[string]any{"options_enabled": []string{"GatewayPorts"}}},
		},
		{
			name: "OpenWrt dropbear config added with root password logins",
			ch:   added(fileEntry("/etc/config/dropbear", strings.Replace(uci, "'off'", `"yes"`, 1), 0o644)),
			want: &want{ev: map[string]any{"options_enabled": []string{"PasswordAuth", "RootPasswordAuth"}}},
		},
		{name: "OpenWrt dropbear option turned off", ch: mod("/etc/config/dropbear", uci, strings.Replace(uci, "PasswordAuth 'on'", "PasswordAuth 'off'", 1))},
		{name: "OpenWrt dropbear port changed", ch: mod("/etc/config/dropbear", uci, strings.Replace(uci, "'22'", "'2222'", 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, SSH{}, scanned(t, tt.ch))
			if tt.want == nil {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDServiceAdded, pipeline.SeverityHigh, tt.ch)
			contains(t, "message", f.Message, tt.want.msg...)
			for k, v := range tt.want.ev {
				if !reflect.DeepEqual(f.Evidence[k], v) {
					t.Errorf("evidence %s = %#v, want %#v", k, f.Evidence[k], v)
				}
			}
		})
	}
}

func TestDropbearFlags(t *testing.T) {
	const (
		s = "password logins (-s dropped)"
		g = "root password logins (-g dropped)"
		w = "root logins (-w dropped)"
	)
	script := func(cmd string) string {
		return "#!/bin/sh /etc/rc.common\nSTART=50\nstart() {\n\t" + cmd + "\n}\n"
	}
	tests := []struct {
		name     string
		path     string
		old, new string
		want     []string // guards_dropped, nil for no finding
	}{
		{name: "-s dropped", path: "/etc/init.d/dropbear", old: script("/usr/sbin/dropbear -s -g -p 22"), new: script("/usr/sbin/dropbear -g -p 22"), want: []string{s}},
		{name: "-g dropped", path: "/etc/init.d/dropbear", old: script("/usr/sbin/dropbear -s -g -p 22"), new: script("/usr/sbin/dropbear -s -p 22"), want: []string{g}},
		{name: "-w dropped", path: "/etc/init.d/dropbear", old: script("dropbear -w -p 22 -R"), new: script("dropbear -p 22 -R"), want: []string{w}},
		{name: "combined -sg split, -s lost", path: "/etc/init.d/dropbear", old: script("dropbear -sg -p 22"), new: script("dropbear -g -p 22"), want: []string{s}},
		{name: "combined -swg all lost", path: "/etc/init.d/dropbear", old: script("dropbear -swg -p 22"), new: script("dropbear -p 22"), want: []string{s, g, w}},
		{name: "quoted flags", path: "/etc/inittab", old: "::respawn:/usr/sbin/dropbear -F '-s' \"-g\"\n", new: "::respawn:/usr/sbin/dropbear -F\n", want: []string{s, g}},
		{name: "any text file: a config with a command line", path: "/usr/lib/vendor/sshd.conf", old: "cmd=dropbear -s -p 22\n", new: "cmd=dropbear -p 22\n", want: []string{s}},
		{
			name: "DROPBEAR_EXTRA_ARGS loses -w, flag not first",
			path: "/etc/default/dropbear",
			old:  "# options for dropbear\nDROPBEAR_PORT=22\nDROPBEAR_EXTRA_ARGS=\"-p 2222 -w\"\n",
			new:  "# options for dropbear\nDROPBEAR_PORT=22\nDROPBEAR_EXTRA_ARGS=\"-p 2222\"\n",
			want: []string{w},
		},
		// Nothing to report.
		{name: "flags reordered", path: "/etc/init.d/dropbear", old: script("dropbear -s -g -p 22"), new: script("dropbear -p 22 -gs")},
		{name: "port changed", path: "/etc/init.d/dropbear", old: script("dropbear -s -p 22"), new: script("dropbear -s -p 2222")},
		{name: "guards added", path: "/etc/init.d/dropbear", old: script("dropbear -p 22"), new: script("dropbear -s -g -w -p 22")},
		{name: "long option is no guard", path: "/etc/init.d/dropbear", old: script("dropbear --sg -p 22"), new: script("dropbear -p 22")},
		{name: "a flag in a comment is no guard", path: "/etc/init.d/dropbear", old: script("dropbear -p 22") + "# dropbear -s -g\n", new: script("dropbear -p 22")},
		{name: "flags before the command are not its flags", path: "/etc/init.d/dropbear", old: script("mkdir -p -s /etc/dropbear"), new: script("mkdir -p /etc/dropbear")},
		{name: "no dropbear left in the file", path: "/etc/init.d/dropbear", old: script("dropbear -s"), new: script("sshd -D")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := changed(fileEntry(tt.path, tt.old, 0o755), fileEntry(tt.path, tt.new, 0o755), "content")
			var got []pipeline.Finding
			for _, f := range analyzeWith(t, SSH{}, scanned(t, ch)) {
				if _, ok := f.Evidence["guards_dropped"]; ok {
					got = append(got, f)
				}
			}
			if tt.want == nil {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
			if !reflect.DeepEqual(f.Evidence["guards_dropped"], tt.want) {
				t.Errorf("guards_dropped = %q, want %q", f.Evidence["guards_dropped"], tt.want)
			}
			contains(t, "message", f.Message, "dropbear now allows "+strings.Join(tt.want, ", "))
		})
	}
}

// TestDropbearFlagsNotInBinaries: a binary that holds dropbear and its
// flags as strings is no command line.
func TestDropbearFlagsNotInBinaries(t *testing.T) {
	ch := changed(fileEntry("/usr/sbin/dropbear", "\x7fELF\x02\x01\x01usage: dropbear -s -g -w\n", 0o755),
		fileEntry("/usr/sbin/dropbear", "\x7fELF\x02\x01\x01usage: dropbear -p\n", 0o755), "content")
	none(t, analyzeWith(t, SSH{}, scanned(t, ch)))
}

// TestDropbearExtraArgs: Debian's /etc/default/dropbear passes dropbear's
// flags in DROPBEAR_EXTRA_ARGS="-s -w". The first flag is glued to the
// variable ("DROPBEAR_EXTRA_ARGS=\"-s") and counts as much as the others;
// and the file need not hold the word "dropbear" in lower case (Debian's
// says "Dropbear" and DROPBEAR_…).
func TestDropbearExtraArgs(t *testing.T) {
	const header = "# the TCP port that Dropbear listens on\nDROPBEAR_PORT=22\n# any additional arguments for Dropbear\n"
	tests := []struct {
		name, header, old, new string
		want                   []string
	}{
		{
			name:   "the only flag dropped",
			header: "# dropbear\n",
			old:    "DROPBEAR_EXTRA_ARGS=\"-s\"\n",
			new:    "DROPBEAR_EXTRA_ARGS=\"\"\n",
			want:   []string{"password logins (-s dropped)"},
		},
		{
			name:   "the first of two flags dropped",
			header: "# dropbear\n",
			old:    "DROPBEAR_EXTRA_ARGS=\"-s -w\"\n",
			new:    "DROPBEAR_EXTRA_ARGS=\"-w\"\n",
			want:   []string{"password logins (-s dropped)"},
		},
		{
			name:   "unquoted",
			header: "# dropbear\n",
			old:    "DROPBEAR_EXTRA_ARGS=-g\n",
			new:    "DROPBEAR_EXTRA_ARGS=\n",
			want:   []string{"root password logins (-g dropped)"},
		},
		{
			name:   "Debian's file, no lower-case dropbear in it",
			header: header,
			old:    "DROPBEAR_EXTRA_ARGS=\"-p 2222 -w\"\n",
			new:    "DROPBEAR_EXTRA_ARGS=\"-p 2222\"\n",
			want:   []string{"root logins (-w dropped)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := changed(fileEntry("/etc/default/dropbear", tt.header+tt.old, 0o644),
				fileEntry("/etc/default/dropbear", tt.header+tt.new, 0o644), "content")
			got := analyzeWith(t, SSH{}, scanned(t, ch))
			if len(got) != 1 {
				t.Fatalf("%d findings, want 1 with guards_dropped %q: %s", len(got), tt.want, marshal(t, got))
			}
			if !reflect.DeepEqual(got[0].Evidence["guards_dropped"], tt.want) {
				t.Errorf("guards_dropped = %q, want %q", got[0].Evidence["guards_dropped"], tt.want)
			}
		})
	}
}

// TestSSHDConfigEqualsSyntax: sshd splits a keyword from its argument on
// blanks or one '=' (strdelim in OpenSSH's misc.c), so "PermitRootLogin=yes"
// and "PermitRootLogin = yes" open root logins as "PermitRootLogin yes"
// does.
func TestSSHDConfigEqualsSyntax(t *testing.T) {
	const hardened = "PermitRootLogin no\nPasswordAuthentication no\n"
	for _, line := range []string{"PermitRootLogin=yes", "PermitRootLogin = yes", "PermitRootLogin =yes"} {
		t.Run(line, func(t *testing.T) {
			ch := changed(fileEntry("/etc/ssh/sshd_config", hardened, 0o644),
				fileEntry("/etc/ssh/sshd_config", strings.Replace(hardened, "PermitRootLogin no", line, 1), 0o644), "content")
			f := only(t, analyzeWith(t, SSH{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
			contains(t, "message", f.Message, "permitrootlogin yes (was no)")
		})
	}
}

// TestUCIDropbearSecondInstance: OpenWrt starts one dropbear per
// "config dropbear" section (config_foreach dropbear_instance dropbear in
// /etc/init.d/dropbear), each with its own options; a second instance that
// allows root password logins opens the door even though the first does
// not.
func TestUCIDropbearSecondInstance(t *testing.T) {
	const first = "config dropbear\n\toption PasswordAuth 'on'\n\toption RootPasswordAuth 'off'\n\toption Port '22'\n"
	ch := changed(fileEntry("/etc/config/dropbear", first, 0o644),
		fileEntry("/etc/config/dropbear", first+"\nconfig dropbear\n\toption RootPasswordAuth 'on'\n\toption Port '2222'\n", 0o644), "content")
	f := only(t, analyzeWith(t, SSH{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
	if !reflect.DeepEqual(f.Evidence["options_enabled"], []string{"RootPasswordAuth"}) {
		t.Errorf("options_enabled = %#v, want [RootPasswordAuth]", f.Evidence["options_enabled"])
	}
}
