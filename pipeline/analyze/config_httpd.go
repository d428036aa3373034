package analyze

import (
	"net/netip"
	"sort"
	"strings"
)

// busybox httpd.conf: "A:addr" and "D:addr" rules (the first that matches
// decides; "D:*" makes the rest denied, else the rest is allowed) and
// "/path:user:pass" lines that protect a path and what is under it.

type httpdRule struct {
	prefix netip.Prefix
	text   string
	line   int
}

type httpdConf struct {
	denyAll bool
	allow   []httpdRule
	deny    []httpdRule
	// auth maps a protected path to its line; emptyPass marks users whose
	// password is empty, by "path:user".
	auth      map[string]int
	emptyPass map[string]bool
	users     map[string]bool
	any       bool // it holds busybox rules at all
}

func parseHTTPD(b []byte) httpdConf {
	c := httpdConf{auth: map[string]int{}, emptyPass: map[string]bool{}, users: map[string]bool{}}
	for _, l := range configLines(b) {
		t := l.text
		switch {
		case len(t) > 2 && (t[0] == 'A' || t[0] == 'D' || t[0] == 'a' || t[0] == 'd') && t[1] == ':':
			c.any = true
			v := strings.TrimSpace(t[2:])
			deny := t[0] == 'D' || t[0] == 'd'
			if v == "*" {
				c.denyAll = deny
				continue
			}
			p, ok := parsePrefix(v)
			if !ok || len(c.allow)+len(c.deny) >= maxConfigItems {
				continue
			}
			r := httpdRule{p, t, l.n}
			if deny {
				c.deny = append(c.deny, r)
			} else {
				c.allow = append(c.allow, r)
			}
		case strings.HasPrefix(t, "/"):
			f := strings.SplitN(t, ":", 3)
			if len(f) != 3 || len(c.auth) >= maxConfigItems {
				continue
			}
			c.any = true
			p := strings.TrimSuffix(f[0], "/")
			if p == "" {
				p = "/"
			}
			if _, ok := c.auth[p]; !ok {
				c.auth[p] = l.n
			}
			c.users[p+":"+f[1]] = true
			if f[2] == "" {
				c.emptyPass[p+":"+f[1]] = true
			}
		}
	}
	return c
}

// protects reports whether a path is under an auth line of c.
func (c httpdConf) protects(p string) bool {
	for q := range c.auth {
		if q == "/" || p == q || strings.HasPrefix(p, q+"/") {
			return true
		}
	}
	return false
}

func judgeHTTPD(oldB, curB []byte) []weakening {
	old, cur := parseHTTPD(oldB), parseHTTPD(curB)
	if !cur.any && !old.any {
		return nil // not busybox's httpd.conf
	}
	var out []weakening
	switch {
	case old.denyAll && !cur.denyAll:
		out = append(out, weakening{"A/D rules", "D:* (deny the rest)", "allow the rest", "the web server answers every address", 0})
	case old.denyAll && cur.denyAll:
		for _, n := range cur.allow {
			covered := false
			for _, o := range old.allow {
				if covers(o.prefix, n.prefix) {
					covered = true
					break
				}
			}
			if !covered {
				out = append(out, weakening{"A: rule", ruleTexts(old.allow), n.text, "the web server answers " + n.prefix.String(), n.line})
			}
		}
	case !cur.denyAll:
		for _, o := range old.deny {
			covered := false
			for _, n := range cur.deny {
				if covers(n.prefix, o.prefix) {
					covered = true
					break
				}
			}
			if !covered {
				out = append(out, weakening{"D: rule", o.text, "(removed)", "the web server answers " + o.prefix.String(), 0})
			}
		}
	}
	paths := make([]string, 0, len(old.auth))
	for p := range old.auth {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !cur.protects(p) {
			out = append(out, weakening{"auth for " + p, "password required", "(removed)", p + " served without a password", 0})
		}
	}
	keys := make([]string, 0, len(cur.emptyPass))
	for k := range cur.emptyPass {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !old.emptyPass[k] && old.users[k] {
			p, user, _ := strings.Cut(k, ":")
			out = append(out, weakening{"auth for " + p, "password of " + user + " set", "empty", p + " accepts " + user + " with an empty password", cur.auth[p]})
		}
	}
	return out
}

func ruleTexts(rs []httpdRule) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.text)
		if len(s) == 8 {
			break
		}
	}
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
