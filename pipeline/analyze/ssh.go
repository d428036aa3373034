package analyze

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/fwvet/fwvet/pipeline"
)

// SSH reports new keys in any authorized_keys file, root's, a user's or
// Dropbear's (authorized-key-added), and SSH server settings that newly
// allow root or password logins (service-added): sshd_config, Dropbear's
// defaults and OpenWrt's UCI config, and dropbear command lines that lose
// -s, -g or -w.
type SSH struct{}

var _ pipeline.Analyzer = SSH{}

// Name implements pipeline.Analyzer.
func (SSH) Name() string { return "ssh" }

const maxSSHFile = 1 << 20

// Analyze implements pipeline.Analyzer.
func (SSH) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		if ch.New == nil || ch.New.Type != pipeline.TypeFile || ch.Kind == pipeline.ChangeMetadata {
			continue
		}
		base := path.Base(ch.Path)
		var fs []pipeline.Finding
		var err error
		switch {
		case base == "authorized_keys" || base == "authorized_keys2":
			fs, err = authorizedKeys(ctx, ch)
		case ch.Path == "/etc/ssh/sshd_config" || matchAny([]string{"/etc/ssh/sshd_config.d/*"}, ch.Path):
			fs, err = sshdConfig(ctx, ch)
		case ch.Path == "/etc/config/dropbear":
			fs, err = uciDropbear(ctx, ch)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
		if sc := in.Scans[ch.Key]; sc == nil || sc.New == nil || sc.New.Magic != "" {
			continue // dropbear command lines are in scripts and configs
		}
		dl, err := dropbearFlags(ctx, ch)
		if err != nil {
			return nil, err
		}
		out = append(out, dl...)
	}
	return out, nil
}

func authorizedKeys(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
	had := map[string]bool{}
	if ch.Kind == pipeline.ChangeModified {
		old, err := readText(ctx, ch.Old, maxSSHFile)
		if err != nil {
			return nil, err
		}
		for _, k := range parseAuthorizedKeys(old) {
			had[k.fingerprint] = true
		}
	}
	cur, err := readText(ctx, ch.New, maxSSHFile)
	if err != nil {
		return nil, err
	}
	var out []pipeline.Finding
	for _, k := range parseAuthorizedKeys(cur) {
		if had[k.fingerprint] {
			continue
		}
		ev := map[string]any{"key_type": k.typ, "fingerprint": k.fingerprint, "comment": k.comment, "line": k.line,
			"inspect": fmt.Sprintf("fwvet unpack REF DIR && ssh-keygen -lf DIR%s", ch.Path)}
		if len(k.options) > 0 {
			ev["options"] = k.options
		}
		msg := fmt.Sprintf("new %s key %s", k.typ, k.fingerprint)
		if k.comment != "" {
			msg += fmt.Sprintf(" (%s)", k.comment)
		}
		out = append(out, finding(pipeline.IDAuthorizedKeyAdded, ch, msg, ev))
	}
	return out, nil
}

type authKey struct {
	typ, fingerprint, comment string
	options                   []string
	line                      int
}

func parseAuthorizedKeys(b []byte) []authKey {
	var out []authKey
	for i, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		pub, comment, opts, _, err := ssh.ParseAuthorizedKey(l)
		if err != nil {
			continue
		}
		out = append(out, authKey{typ: pub.Type(), fingerprint: ssh.FingerprintSHA256(pub), comment: comment, options: opts, line: i + 1})
	}
	return out
}

// sshdConfig compares the settings that open the door, as sshd reads them:
// the first value of a keyword wins, and the defaults apply when it is unset.
func sshdConfig(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
	old, cur, err := readVersions(ctx, ch, maxSSHFile)
	if err != nil {
		return nil, err
	}
	ov, nv := sshdSettings(old), sshdSettings(cur)
	opens := []struct{ key, def, open string }{
		{"permitrootlogin", "prohibit-password", "yes"},
		{"passwordauthentication", "yes", "yes"},
		{"permitemptypasswords", "no", "yes"},
		{"authorizedkeysfile", ".ssh/authorized_keys .ssh/authorized_keys2", ""},
		{"authorizedkeyscommand", "none", ""},
	}
	var changed []string
	ev := map[string]any{}
	for _, o := range opens {
		before, after := valueOr(ov, o.key, o.def), valueOr(nv, o.key, o.def)
		if ch.Kind == pipeline.ChangeAdded {
			before = o.def
		}
		if before == after {
			continue
		}
		if o.open != "" && after != o.open {
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s (was %s)", o.key, after, before))
		ev[o.key] = map[string]string{"old": before, "new": after}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []pipeline.Finding{finding(pipeline.IDServiceAdded, ch, "SSH server now allows: "+strings.Join(changed, ", "), ev)}, nil
}

func sshdSettings(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range meaningfulLines(b) {
		// sshd splits the keyword from its value on blanks or one "=".
		k, v := l, ""
		if i := strings.IndexAny(l, " \t="); i > 0 {
			k, v = l[:i], strings.TrimSpace(l[i:])
			v = strings.TrimSpace(strings.TrimPrefix(v, "="))
		}
		k = strings.ToLower(k)
		if v == "" {
			continue
		}
		if k == "match" {
			break // what follows applies to some connections only
		}
		if _, seen := m[k]; !seen {
			m[k] = strings.ToLower(v)
		}
	}
	return m
}

func valueOr(m map[string]string, k, def string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}

// uciDropbear reads OpenWrt's /etc/config/dropbear options.
func uciDropbear(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
	old, cur, err := readVersions(ctx, ch, maxSSHFile)
	if err != nil {
		return nil, err
	}
	// OpenWrt starts one dropbear per "config dropbear" section: count the
	// sections that turn an option on.
	on := func(b []byte, opt string) int {
		n := 0
		for _, l := range meaningfulLines(b) {
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == "option" && f[1] == opt {
				v := strings.Trim(f[2], `'"`)
				if v == "on" || v == "1" || v == "yes" || v == "true" {
					n++
				}
			}
		}
		return n
	}
	var opened []string
	for _, opt := range []string{"PasswordAuth", "RootPasswordAuth", "RootLogin", "GatewayPorts"} {
		if on(cur, opt) > on(old, opt) {
			opened = append(opened, opt)
		}
	}
	if len(opened) == 0 {
		return nil, nil
	}
	return []pipeline.Finding{finding(pipeline.IDServiceAdded, ch, "Dropbear now allows: "+strings.Join(opened, ", "),
		map[string]any{"options_enabled": opened})}, nil
}

// dropbearFlags reports dropbear command lines, in any changed text file,
// that drop -s (no password logins), -g (no root password logins) or -w
// (no root logins) that the previous version passed.
func dropbearFlags(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
	if ch.Kind != pipeline.ChangeModified || ch.New.Size > maxSSHFile {
		return nil, nil
	}
	cur, err := readText(ctx, ch.New, maxSSHFile)
	if err != nil || !bytes.Contains(bytes.ToLower(cur), []byte("dropbear")) || bytes.IndexByte(cur, 0) >= 0 {
		return nil, err
	}
	old, err := readText(ctx, ch.Old, maxSSHFile)
	if err != nil {
		return nil, err
	}
	had, has := dropbearGuards(old), dropbearGuards(cur)
	meaning := map[byte]string{'s': "password logins (-s dropped)", 'g': "root password logins (-g dropped)", 'w': "root logins (-w dropped)"}
	var lost []string
	for _, f := range []byte("sgw") {
		if had[f] && !has[f] {
			lost = append(lost, meaning[f])
		}
	}
	if len(lost) == 0 {
		return nil, nil
	}
	return []pipeline.Finding{finding(pipeline.IDServiceAdded, ch, "dropbear now allows "+strings.Join(lost, ", "),
		map[string]any{"guards_dropped": lost})}, nil
}

// dropbearGuards collects the -s, -g and -w flags of every dropbear command
// line and DROPBEAR_EXTRA_ARGS setting of a file.
func dropbearGuards(b []byte) map[byte]bool {
	m := map[byte]bool{}
	for _, l := range meaningfulLines(b) {
		i := strings.Index(l, "dropbear")
		j := strings.Index(l, "DROPBEAR_EXTRA_ARGS")
		if i < 0 && j < 0 {
			continue
		}
		rest := l[max(i, j):]
		if j >= 0 && j > i {
			// DROPBEAR_EXTRA_ARGS="-s -w": the flags follow the "=".
			_, rest, _ = strings.Cut(rest, "=")
		}
		for _, w := range strings.Fields(rest) {
			w = strings.Trim(w, `"'`)
			if len(w) >= 2 && w[0] == '-' && w[1] != '-' {
				for _, c := range []byte(w[1:]) {
					if c == 's' || c == 'g' || c == 'w' {
						m[c] = true
					}
				}
			}
		}
	}
	return m
}
