package analyze

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Accounts reports new users and groups, uids or gids turned 0, login
// shells enabled, locked accounts given a password and passwords made empty
// (account-added), and changed password hashes (credential-changed), in
// passwd, shadow, group and gshadow, BusyBox and OpenWrt's included.
// Evidence names the account and never carries a hash: only its algorithm
// and a short fingerprint.
type Accounts struct{}

var _ pipeline.Analyzer = Accounts{}

// maxAccountFile bounds how much of an account database is read.
const maxAccountFile = 4 << 20

// Name implements pipeline.Analyzer.
func (Accounts) Name() string { return "accounts" }

// Analyze implements pipeline.Analyzer.
func (Accounts) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		if ch.New == nil || ch.New.Type != pipeline.TypeFile || ch.Kind == pipeline.ChangeMetadata {
			continue
		}
		var fs []pipeline.Finding
		var err error
		switch ch.Path {
		case "/etc/passwd":
			fs, err = diffDB(ctx, ch, passwdRules)
		case "/etc/group":
			fs, err = diffDB(ctx, ch, groupRules)
		case "/etc/shadow":
			fs, err = diffDB(ctx, ch, shadowRules)
		case "/etc/gshadow":
			fs, err = diffDB(ctx, ch, gshadowRules)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
	}
	return out, nil
}

// dbRules says how to read one colon-separated account database.
type dbRules struct {
	kind string // "user" or "group"
	// idField is the index of the uid or gid, or -1.
	idField int
	// secretField is the index of the password field.
	secretField int
	// emptyMeansOpen: an empty password field lets anyone log in.
	emptyMeansOpen bool
	minFields      int
}

var (
	passwdRules = dbRules{kind: "user", idField: 2, secretField: 1, emptyMeansOpen: true, minFields: 7}
	groupRules  = dbRules{kind: "group", idField: 2, secretField: 1, minFields: 4}
	shadowRules = dbRules{kind: "user", idField: -1, secretField: 1, emptyMeansOpen: true, minFields: 2}
	// An empty gshadow password lets only members use the group.
	gshadowRules = dbRules{kind: "group", idField: -1, secretField: 1, minFields: 2}
)

type account struct {
	fields []string
	line   int
}

func readDB(ctx context.Context, e *pipeline.Entry, r dbRules) (map[string]account, error) {
	out := map[string]account{}
	if e == nil || e.Type != pipeline.TypeFile {
		return out, nil
	}
	rc, err := e.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(rc, maxAccountFile))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < r.minFields || f[0] == "" {
			continue
		}
		if _, dup := out[f[0]]; !dup {
			out[f[0]] = account{fields: f, line: n}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	return out, nil
}

func diffDB(ctx context.Context, ch *pipeline.Change, r dbRules) ([]pipeline.Finding, error) {
	old, err := readDB(ctx, ch.Old, r)
	if err != nil {
		return nil, err
	}
	cur, err := readDB(ctx, ch.New, r)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []pipeline.Finding
	for _, name := range names {
		a := cur[name]
		prev, existed := old[name]
		ev := map[string]any{r.kind: name, "line": a.line}
		id := ""
		if r.idField >= 0 {
			id = a.fields[r.idField]
			ev[idName(r)] = id
		}
		root := r.idField >= 0 && isZero(id)
		if r.kind == "user" && len(a.fields) >= 7 {
			ev["shell"] = a.fields[6]
			ev["home"] = a.fields[5]
		}
		switch {
		case !existed && r.idField < 0:
			// A shadow line without a passwd line is reported through
			// passwd; here only an open login matters.
			if open(a, r) {
				out = append(out, accountFinding(ch, fmt.Sprintf("new %s %s has an empty password", r.kind, name), ev, "empty-password"))
			}
		case !existed:
			msg := fmt.Sprintf("new %s %s (%s %s)", r.kind, name, idName(r), id)
			if root {
				msg = fmt.Sprintf("new %s %s with %s 0: full root privileges", r.kind, name, idName(r))
			}
			if open(a, r) {
				msg += ", with an empty password"
				ev["empty_password"] = true
			}
			out = append(out, accountFinding(ch, msg, ev, "new-"+r.kind))
		default:
			if root && !isZero(prev.fields[r.idField]) {
				ev["old_"+idName(r)] = prev.fields[r.idField]
				out = append(out, accountFinding(ch, fmt.Sprintf("%s %s turned %s 0 (was %s)", r.kind, name, idName(r), prev.fields[r.idField]), ev, idName(r)+"-0"))
			}
			if open(a, r) && !open(prev, r) {
				out = append(out, accountFinding(ch, fmt.Sprintf("%s %s now has an empty password", r.kind, name), ev, "empty-password"))
			}
			out = append(out, secretChange(ch, r, name, prev, a)...)
			if r.kind == "user" && len(a.fields) >= 7 && len(prev.fields) >= 7 && noLogin(prev.fields[6]) && !noLogin(a.fields[6]) {
				ev["old_shell"] = prev.fields[6]
				out = append(out, accountFinding(ch, fmt.Sprintf("user %s can log in now: shell %s (was %s)", name, a.fields[6], prev.fields[6]), ev, "login-shell"))
			}
		}
	}
	return out, nil
}

// isZero reports an id that the C library reads as 0: "0", "00", "000"…
func isZero(id string) bool {
	n, err := strconv.ParseUint(id, 10, 32)
	return err == nil && n == 0
}

func idName(r dbRules) string {
	if r.kind == "group" {
		return "gid"
	}
	return "uid"
}

// open reports an empty password field, which lets anyone log in.
func open(a account, r dbRules) bool {
	return r.emptyMeansOpen && len(a.fields) > r.secretField && a.fields[r.secretField] == ""
}

func accountFinding(ch *pipeline.Change, msg string, ev map[string]any, why string) pipeline.Finding {
	ev["reason"] = why
	return finding(pipeline.IDAccountAdded, ch, msg, ev)
}

// secretChange reports a password hash that changed, or a locked or empty
// one that became a usable hash: both credential-changed, the second
// disclosed only by an allow entry.
func secretChange(ch *pipeline.Change, r dbRules, name string, prev, a account) []pipeline.Finding {
	sf := r.secretField
	if len(prev.fields) <= sf || len(a.fields) <= sf {
		return nil
	}
	ps, ns := prev.fields[sf], a.fields[sf]
	if ps == ns || !isHash(ns) {
		return nil
	}
	ev := map[string]any{r.kind: name, "line": a.line, "new_hash": hashSummary(ns)}
	if isHash(ps) {
		ev["old_hash"] = hashSummary(ps)
		f := finding(pipeline.IDCredentialChanged, ch, fmt.Sprintf("password of %s %s changed", r.kind, name), ev)
		return []pipeline.Finding{f}
	}
	if ps == "x" && r.kind == "user" && ch.Path == "/etc/passwd" {
		// The hash moved out of shadow into world-readable passwd.
		f := finding(pipeline.IDCredentialChanged, ch, fmt.Sprintf("password hash of user %s now in world-readable passwd", name), ev)
		return []pipeline.Finding{f}
	}
	// Declaring the file changed does not declare unlocking an account.
	ev["reason"] = "unlocked"
	f := finding(pipeline.IDCredentialChanged, ch, fmt.Sprintf("locked %s %s was given a password", r.kind, name), ev)
	f.AllowOnly = true
	return []pipeline.Finding{f}
}

// isHash reports a crypt(3) hash: "$id$…" or the 13 characters of DES crypt.
func isHash(s string) bool {
	if strings.HasPrefix(s, "$") && len(s) > 3 {
		return true
	}
	if len(s) != 13 {
		return false
	}
	for _, c := range []byte(s) {
		if !(isLetter(c) || isDigit(c) || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// hashSummary names a hash's algorithm and fingerprints it, so a reviewer
// can tell two hashes apart without the hash being printed.
func hashSummary(h string) string {
	algo := "des"
	if strings.HasPrefix(h, "$") {
		if id, _, ok := strings.Cut(h[1:], "$"); ok {
			algo = map[string]string{"1": "md5", "5": "sha256", "6": "sha512", "y": "yescrypt", "2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt"}[id]
			if algo == "" {
				algo = "$" + id + "$"
			}
		}
	}
	sum := sha256.Sum256([]byte(h))
	return fmt.Sprintf("%s, fingerprint %s", algo, hex.EncodeToString(sum[:4]))
}

// noLogin reports a shell that refuses logins.
func noLogin(shell string) bool {
	switch path.Base(shell) {
	case "nologin", "false", "sync", "halt", "shutdown", "":
		return true
	}
	return false
}
