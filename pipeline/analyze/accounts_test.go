package analyze

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

const (
	basePasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"guest:x:1001:1001:guest:/home/guest:/bin/sh\n"
	baseGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"users:x:100:guest\n"
	// Password hashes: none may ever appear in a finding.
	rootHash  = "$6$rOoTsAlT$Q9vJ3kq0xW1RootHashMustNotLeak.xx0000000000000000000000000000000000000000000"
	guestHash = "$6$gUeStSaLt$Z8GuestHashMustNotLeak.yy1111111111111111111111111111111111111111111111"
	newHash   = "$6$nEwSaLt$NewHashMustNotLeak.zz2222222222222222222222222222222222222222222222222222"
	md5Hash   = "$1$mD5sAlT$Md5HashMustNotLeak"
)

var baseShadow = "root:" + rootHash + ":19000:0:99999:7:::\n" +
	"daemon:*:19000:0:99999:7:::\n" +
	"guest:" + guestHash + ":19000:0:99999:7:::\n"

var secrets = []string{rootHash, guestHash, newHash, md5Hash, "rOoTsAlT", "gUeStSaLt", "nEwSaLt", "mD5sAlT"}

// wantAccount is one expected account-added finding.
type wantAccount struct {
	// id is account-added (critical) unless set to credential-changed (high).
	id      string
	reason  string
	account string         // the user or group name in evidence
	msg     []string       // substrings of the message
	ev      map[string]any // further evidence entries
}

func TestAccounts(t *testing.T) {
	const none = "\x00" // marks a side that does not exist
	tests := []struct {
		name     string
		path     string
		old, new string
		kind     pipeline.ChangeKind // default: added when old is none, else modified
		want     []wantAccount
	}{
		{
			name: "new user",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "backdoor:x:1002:1002::/home/backdoor:/bin/sh\n",
			want: []wantAccount{{reason: "new-user", account: "backdoor", msg: []string{"new user backdoor", "1002"},
				ev: map[string]any{"uid": "1002", "shell": "/bin/sh", "home": "/home/backdoor", "line": 4}}},
		},
		{
			name: "new uid-0 user",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  "toor:x:0:0::/root:/bin/sh\n" + basePasswd,
			want: []wantAccount{{reason: "new-user", account: "toor", msg: []string{"toor", "root"}, ev: map[string]any{"uid": "0", "line": 1}}},
		},
		{
			name: "uid turned 0",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "daemon:x:1:1:", "daemon:x:0:1:", 1),
			want: []wantAccount{{reason: "uid-0", account: "daemon", msg: []string{"daemon", "uid 0", "was 1"}, ev: map[string]any{"uid": "0", "old_uid": "1"}}},
		},
		{
			name: "empty password in passwd",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "guest:x:", "guest::", 1),
			want: []wantAccount{{reason: "empty-password", account: "guest", msg: []string{"guest", "empty password"}}},
		},
		{
			name: "new user with an empty password",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "diag::2000:2000::/:/bin/sh\n",
			want: []wantAccount{{reason: "new-user", account: "diag", msg: []string{"diag", "empty password"}, ev: map[string]any{"empty_password": true}}},
		},
		{
			name: "new root user with a hash in passwd",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "admin:" + md5Hash + ":0:0:Admin:/:/bin/sh\n",
			want: []wantAccount{{reason: "new-user", account: "admin", msg: []string{"admin", "root"}}},
		},
		{
			name: "several changes, sorted by name",
			path: "/etc/passwd",
			old:  basePasswd,
			new: "root:x:0:0:root:/root:/bin/sh\n" +
				"daemon:x:0:1:daemon:/usr/sbin:/bin/false\n" +
				"guest::1001:1001:guest:/home/guest:/bin/sh\n" +
				"zed:x:3000:3000::/:/bin/false\n" +
				"alice:x:3001:3001::/:/bin/false\n",
			want: []wantAccount{
				{reason: "new-user", account: "alice"},
				{reason: "uid-0", account: "daemon"},
				{reason: "empty-password", account: "guest"},
				{reason: "new-user", account: "zed"},
			},
		},
		{
			name: "unchanged accounts",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  "# managed by acme\n" + basePasswd + "\n",
		},
		{
			name: "gecos, home and shell changes are not account-added",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "guest:/home/guest:/bin/sh", "Guest User:/home/g:/bin/ash", 1),
		},
		{
			name: "removed user",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "guest:x:1001:1001:guest:/home/guest:/bin/sh\n", "", 1),
		},
		{
			name: "root already root",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "root:x:0:0:root:", "root:x:0:0:superuser:", 1),
		},
		{
			name: "passwd added: every user is new",
			path: "/etc/passwd",
			old:  none,
			new:  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
			want: []wantAccount{
				{reason: "new-user", account: "nobody", ev: map[string]any{"uid": "65534"}},
				{reason: "new-user", account: "root", msg: []string{"root privileges"}},
			},
		},
		{
			name: "passwd removed",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  none,
			kind: pipeline.ChangeRemoved,
		},
		{
			name: "malformed and NIS lines are skipped",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "short:x:0\n+nis:x:0:0:::\n-nis2:x:0:0:::\n:x:0:0:::\n",
		},
		{
			name: "another file named like passwd",
			path: "/etc/passwd-",
			old:  basePasswd,
			new:  basePasswd + "toor:x:0:0::/root:/bin/sh\n",
		},
		{
			name: "passwd in another directory",
			path: "/usr/share/defaults/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "toor:x:0:0::/root:/bin/sh\n",
		},
		// shadow
		{
			name: "empty password in shadow",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  strings.Replace(baseShadow, rootHash, "", 1),
			want: []wantAccount{{reason: "empty-password", account: "root", msg: []string{"root", "empty password"}}},
		},
		{
			name: "new shadow entry with an empty password",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  baseShadow + "ghost::19000:0:99999:7:::\n",
			want: []wantAccount{{reason: "empty-password", account: "ghost", msg: []string{"ghost", "empty password"}}},
		},
		{
			name: "new shadow entry with a hash is reported through passwd",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  baseShadow + "backdoor:" + newHash + ":19000:0:99999:7:::\n",
		},
		{
			name: "hash changed in shadow is credential-changed",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  strings.Replace(baseShadow, guestHash, newHash, 1),
			want: []wantAccount{{id: pipeline.IDCredentialChanged, account: "guest", msg: []string{"password", "changed"},
				ev: map[string]any{"old_hash": "sha512, fingerprint " + fp(guestHash), "new_hash": "sha512, fingerprint " + fp(newHash)}}},
		},
		{
			name: "locked account given a password",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  strings.Replace(baseShadow, "daemon:*:", "daemon:"+newHash+":", 1),
			// Unlocking is credential-changed, and a declared /etc/shadow
			// does not declare it (AllowOnly, checked below).
			want: []wantAccount{{id: pipeline.IDCredentialChanged, reason: "unlocked", account: "daemon", msg: []string{"locked", "password"}}},
		},
		{
			name: "login shell enabled",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "/usr/sbin:/bin/false", "/usr/sbin:/bin/sh", 1),
			want: []wantAccount{{reason: "login-shell", account: "daemon", msg: []string{"can log in", "/bin/sh", "/bin/false"}}},
		},
		{
			name: "hash moved into passwd",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "guest:x:", "guest:"+md5Hash+":", 1),
			want: []wantAccount{{id: pipeline.IDCredentialChanged, account: "guest", msg: []string{"world-readable"}}},
		},
		{
			name: "new group in gshadow is not reported twice",
			path: "/etc/gshadow",
			old:  "root:*::\n",
			new:  "root:*::\nwheel:!::guest\n",
		},
		{
			name: "account locked in shadow",
			path: "/etc/shadow",
			old:  baseShadow,
			new:  strings.Replace(baseShadow, guestHash, "!"+guestHash, 1),
		},
		{
			name: "already empty stays empty",
			path: "/etc/shadow",
			old:  strings.Replace(baseShadow, guestHash, "", 1),
			new:  strings.Replace(strings.Replace(baseShadow, guestHash, "", 1), rootHash, newHash, 1),
			want: []wantAccount{{id: pipeline.IDCredentialChanged, account: "root"}},
		},
		// group
		{
			name: "new group",
			path: "/etc/group",
			old:  baseGroup,
			new:  baseGroup + "wheel2:x:10:guest\n",
			want: []wantAccount{{reason: "new-group", account: "wheel2", msg: []string{"new group wheel2", "gid 10"}, ev: map[string]any{"gid": "10"}}},
		},
		{
			name: "new gid-0 group",
			path: "/etc/group",
			old:  baseGroup,
			new:  baseGroup + "admins:x:0:\n",
			want: []wantAccount{{reason: "new-group", account: "admins", msg: []string{"admins", "gid 0"}, ev: map[string]any{"gid": "0"}}},
		},
		{
			name: "gid turned 0",
			path: "/etc/group",
			old:  baseGroup,
			new:  strings.Replace(baseGroup, "users:x:100:", "users:x:0:", 1),
			want: []wantAccount{{reason: "gid-0", account: "users", ev: map[string]any{"gid": "0", "old_gid": "100"}}},
		},
		{
			name: "unchanged groups",
			path: "/etc/group",
			old:  baseGroup,
			new:  baseGroup + "\n# end\n",
		},
		{
			name: "empty group password is not a login",
			path: "/etc/group",
			old:  baseGroup,
			new:  strings.Replace(baseGroup, "users:x:", "users::", 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o, n *pipeline.Entry
			if tt.old != none {
				o = fileEntry(tt.path, tt.old, 0o644)
			}
			if tt.new != none {
				n = fileEntry(tt.path, tt.new, 0o644)
			}
			var ch *pipeline.Change
			switch {
			case o == nil:
				ch = added(n)
			case n == nil:
				ch = removed(o)
			default:
				ch = changed(o, n, "content")
			}
			if tt.kind != "" && ch.Kind != tt.kind {
				t.Fatalf("test builds a %s change, want %s", ch.Kind, tt.kind)
			}
			got, err := Accounts{}.Analyze(context.Background(), input(ch))
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkAccountFindings(t, got, tt.want, tt.path)
		})
	}
}

func checkAccountFindings(t *testing.T, got []pipeline.Finding, want []wantAccount, path string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d findings, want %d:\n%s", len(got), len(want), marshal(t, got))
	}
	for i, w := range want {
		f := got[i]
		switch w.id {
		case "", pipeline.IDAccountAdded:
			if f.ID != pipeline.IDAccountAdded || f.Severity != pipeline.SeverityCritical {
				t.Errorf("finding %d = %s/%s, want account-added/critical", i, f.ID, f.Severity)
			}
		default:
			if f.ID != w.id || f.Severity != pipeline.DefaultSeverity[w.id] {
				t.Errorf("finding %d = %s/%s, want %s/%s", i, f.ID, f.Severity, w.id, pipeline.DefaultSeverity[w.id])
			}
		}
		if f.Path != path || f.Key != path {
			t.Errorf("finding %d path %q key %q, want %q", i, f.Path, f.Key, path)
		}
		if (w.id == "" || w.reason != "") && f.Evidence["reason"] != w.reason {
			t.Errorf("finding %d reason = %v, want %s", i, f.Evidence["reason"], w.reason)
		}
		// Only an unlocked account is beyond what declaring the file says.
		if f.AllowOnly != (w.reason == "unlocked") {
			t.Errorf("finding %d (%s) AllowOnly = %v", i, w.reason, f.AllowOnly)
		}
		kind := "user"
		if path == "/etc/group" || path == "/etc/gshadow" {
			kind = "group"
		}
		if f.Evidence[kind] != w.account {
			t.Errorf("finding %d names %s %v, want %s", i, kind, f.Evidence[kind], w.account)
		}
		if !strings.Contains(f.Message, w.account) {
			t.Errorf("finding %d message %q does not name %s", i, f.Message, w.account)
		}
		for _, m := range w.msg {
			if !strings.Contains(f.Message, m) {
				t.Errorf("finding %d message %q does not mention %q", i, f.Message, m)
			}
		}
		for k, v := range w.ev {
			if f.Evidence[k] != v {
				t.Errorf("finding %d evidence %s = %#v, want %#v", i, k, f.Evidence[k], v)
			}
		}
	}
	// No password hash, nor its salt, may leak into the report.
	js := marshal(t, got)
	for _, s := range secrets {
		if strings.Contains(js, s) {
			t.Errorf("findings carry the secret %q:\n%s", s, js)
		}
	}
}

func marshal(t *testing.T, fs []pipeline.Finding) string {
	t.Helper()
	b, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAccountsZeroWrittenOtherwise: libc (strtoul) and busybox (bb_strtou)
// both read a uid field of "00" as uid 0, so a user whose uid becomes "00"
// gains root exactly as with "0".
func TestAccountsZeroWrittenOtherwise(t *testing.T) {
	tests := []struct {
		name, path, old, new string
		want                 wantAccount
	}{
		{
			name: "uid turned 00",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  strings.Replace(basePasswd, "daemon:x:1:1:", "daemon:x:00:1:", 1),
			want: wantAccount{reason: "uid-0", account: "daemon"},
		},
		{
			name: "new user with uid 000 is reported as root",
			path: "/etc/passwd",
			old:  basePasswd,
			new:  basePasswd + "svc:x:000:0::/:/bin/sh\n",
			want: wantAccount{reason: "new-user", account: "svc", msg: []string{"root"}},
		},
		{
			name: "gid turned 00",
			path: "/etc/group",
			old:  baseGroup,
			new:  strings.Replace(baseGroup, "users:x:100:", "users:x:00:", 1),
			want: wantAccount{reason: "gid-0", account: "users"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := changed(fileEntry(tt.path, tt.old, 0o644), fileEntry(tt.path, tt.new, 0o644), "content")
			got, err := Accounts{}.Analyze(context.Background(), input(ch))
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkAccountFindings(t, got, []wantAccount{tt.want}, tt.path)
		})
	}
}

func TestAccountsSkips(t *testing.T) {
	o := fileEntry("/etc/passwd", basePasswd, 0o644)
	n := fileEntry("/etc/passwd", basePasswd+"toor:x:0:0::/root:/bin/sh\n", 0o600)
	symlink := &pipeline.Entry{Path: "/etc/passwd", Key: "/etc/passwd", Type: pipeline.TypeSymlink, LinkTarget: "/tmp/passwd"}
	tests := []struct {
		name string
		ch   *pipeline.Change
	}{
		// A metadata change has the same bytes on both sides; the analyzer
		// must not read them (here they differ only to prove it does not).
		{"metadata change", changed(o, n, "mode")},
		{"passwd became a symlink", changed(o, symlink, "type")},
		{"passwd removed", removed(o)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Accounts{}.Analyze(context.Background(), input(tt.ch))
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if len(got) != 0 {
				t.Errorf("findings: %s", marshal(t, got))
			}
		})
	}
}

func TestAccountsReadError(t *testing.T) {
	boom := errors.New("disk gone")
	n := &pipeline.Entry{Path: "/etc/passwd", Key: "/etc/passwd", Type: pipeline.TypeFile}
	n.SetOpen(func(context.Context) (io.ReadCloser, error) { return nil, boom })
	_, err := Accounts{}.Analyze(context.Background(), input(added(n)))
	if !errors.Is(err, boom) {
		t.Errorf("Analyze error = %v, want the read error", err)
	}
}

// fp is the fingerprint hashSummary shows for a hash.
func fp(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:4])
}
