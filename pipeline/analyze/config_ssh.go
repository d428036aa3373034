package analyze

import (
	"fmt"
	"regexp"
	"strings"
)

// SSH servers: OpenSSH's sshd_config, dropbear's command lines, OpenWrt's
// dropbear config.

func isSSHDConfig(p string) bool {
	return p == "/etc/ssh/sshd_config" || p == "/etc/sshd_config" ||
		(strings.HasPrefix(p, "/etc/ssh/sshd_config.d/") && strings.HasSuffix(p, ".conf"))
}

// sshdConf is what sshd applies to every connection: for most keywords the
// first value wins; a "Match all" block overrides the global values for
// every connection; other Match blocks apply only to some, and are left
// out.
type sshdConf struct {
	vals   map[string]configLine
	listen []configLine
}

// sshdAliases are keywords sshd reads as another.
var sshdAliases = map[string]string{
	"challengeresponseauthentication": "kbdinteractiveauthentication",
}

func parseSSHD(b []byte) sshdConf {
	c := sshdConf{vals: map[string]configLine{}}
	matchAll := map[string]configLine{}
	block := "" // "", "all" or "other"
	for _, l := range configLines(b) {
		k, v := l.text, ""
		if i := strings.IndexAny(l.text, " \t="); i > 0 {
			k, v = l.text[:i], strings.TrimSpace(l.text[i:])
			v = strings.TrimSpace(strings.TrimPrefix(v, "="))
		}
		k = strings.ToLower(k)
		if a, ok := sshdAliases[k]; ok {
			k = a
		}
		if k == "match" {
			if strings.EqualFold(strings.TrimSpace(v), "all") {
				block = "all"
			} else {
				block = "other"
			}
			continue
		}
		if v == "" || block == "other" {
			continue
		}
		if k == "listenaddress" {
			if block == "" && len(c.listen) < 256 {
				c.listen = append(c.listen, configLine{v, l.n})
			}
			continue
		}
		m := c.vals
		if block == "all" {
			m = matchAll
		}
		if _, seen := m[k]; !seen {
			m[k] = configLine{v, l.n}
		}
	}
	for k, v := range matchAll {
		c.vals[k] = v
	}
	return c
}

func (c sshdConf) get(k, def string) (string, int) {
	if v, ok := c.vals[k]; ok {
		return strings.ToLower(v.text), v.n
	}
	return def, 0
}

// orDefault marks a value that no line sets (line 0) as sshd's default.
func orDefault(v string, line int) string {
	if line == 0 {
		return v + " (default)"
	}
	return v
}

var rootLoginRank = map[string]int{"no": 0, "forced-commands-only": 1, "prohibit-password": 2, "without-password": 2, "yes": 3}

// judgeSSHD compares the settings that decide who logs in and from where;
// a new file is compared with OpenSSH's defaults.
func judgeSSHD(oldB, curB []byte) []weakening {
	old, cur := parseSSHD(oldB), parseSSHD(curB)
	var out []weakening
	ov, on := old.get("permitrootlogin", "prohibit-password")
	nv, n := cur.get("permitrootlogin", "prohibit-password")
	if or, ok := rootLoginRank[ov]; ok {
		if nr, ok := rootLoginRank[nv]; ok && nr > or {
			m := "root may log in with a password"
			if nv != "yes" {
				m = "root logins allowed"
			}
			out = append(out, weakening{"PermitRootLogin", orDefault(ov, on), orDefault(nv, n), m, n})
		}
	}
	for _, s := range []struct{ key, name, def, meaning string }{
		{"passwordauthentication", "PasswordAuthentication", "yes", "password logins enabled"},
		{"kbdinteractiveauthentication", "KbdInteractiveAuthentication", "yes", "keyboard-interactive (password) logins enabled"},
		{"permitemptypasswords", "PermitEmptyPasswords", "no", "accounts with an empty password may log in"},
	} {
		ov, on := old.get(s.key, s.def)
		nv, n := cur.get(s.key, s.def)
		if ov == "no" && nv == "yes" {
			out = append(out, weakening{s.name, orDefault(ov, on), orDefault(nv, n), s.meaning, n})
		}
	}
	ov, on = old.get("authenticationmethods", "any")
	nv, n = cur.get("authenticationmethods", "any")
	if authMethodsWeaker(ov, nv) {
		out = append(out, weakening{"AuthenticationMethods", orDefault(ov, on), orDefault(nv, n), "fewer authentication steps required", n})
	}
	oe, oa := listenExposure(old.listen)
	ne, na := listenExposure(cur.listen)
	if ne > oe {
		line := 0
		if len(cur.listen) > 0 {
			line = cur.listen[0].n
		}
		out = append(out, weakening{"ListenAddress", oa, na, "sshd listens on " + ne.String(), line})
	}
	return out
}

// listenExposure ranks sshd's listening addresses (none: every address).
func listenExposure(ls []configLine) (exposure, string) {
	if len(ls) == 0 {
		return exposeAll, "(unset: all addresses)"
	}
	e := exposeLoopback
	var names []string
	for _, l := range ls {
		a := strings.Fields(l.text)[0]
		names = append(names, a)
		e = max(e, addrExposure(a))
	}
	return e, strings.Join(names, " ")
}

// authMethodsWeaker reports whether some way in that cur allows satisfies
// none of old's lists: a client can then log in with less than before.
func authMethodsWeaker(old, cur string) bool {
	parse := func(s string) [][]string {
		var out [][]string
		for _, l := range strings.Fields(s) {
			if l == "any" {
				out = append(out, nil)
				continue
			}
			out = append(out, strings.Split(l, ","))
			if len(out) >= 64 {
				break
			}
		}
		if len(out) == 0 {
			out = append(out, nil)
		}
		return out
	}
	subset := func(a, b []string) bool {
		for _, x := range a {
			found := false
			for _, y := range b {
				if x == y || strings.HasPrefix(y, x+":") {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	ol := parse(old)
	for _, l := range parse(cur) {
		ok := false
		for _, o := range ol {
			if subset(o, l) {
				ok = true
				break
			}
		}
		if !ok {
			return true
		}
	}
	return false
}

// isDropbearScript: where dropbear's command line is written.
func isDropbearScript(p string) bool {
	if p == "/etc/default/dropbear" || p == "/etc/sysconfig/dropbear" {
		return true
	}
	switch serviceKind(p) {
	case "init script", "rc.local", "rc link", "inittab", "systemd unit":
		return true
	}
	return false
}

// dropbearConf is what the dropbear command lines of one file allow, the
// weakest of them deciding.
type dropbearConf struct {
	n int // command lines
	// guards: flags that every command line passes (-s, -g, -w, -j, -k).
	guards map[byte]bool
	// opens: flags that some command line passes (-B, -a).
	opens  map[byte]int
	expose exposure
	ports  []string
	line   int
}

var dropbearVar = regexp.MustCompile(`^(?:export\s+)?(DROPBEAR_[A-Z0-9_]*|EXTRA_ARGS)=(.*)$`)

// dropbearArgFlags take an argument.
const dropbearArgFlags = "brpPWKIcTGAm"

func parseDropbear(b []byte) dropbearConf {
	c := dropbearConf{guards: map[byte]bool{}, opens: map[byte]int{}, expose: exposeLoopback}
	vars := map[string][]string{}
	var cmds []configLine
	for _, l := range configLines(b) {
		if m := dropbearVar.FindStringSubmatch(l.text); m != nil {
			v := strings.TrimSpace(m[2])
			if i := strings.IndexAny(v, ";&|"); i >= 0 && !strings.HasPrefix(v, `"`) && !strings.HasPrefix(v, "'") {
				v = v[:i]
			}
			vars[m[1]] = strings.Fields(unquote(strings.TrimSpace(v)))
			continue
		}
		for _, w := range shellCommands(l.text) {
			args := dropbearArgs(w)
			if args == nil {
				continue
			}
			cmds = append(cmds, configLine{strings.Join(args, " "), l.n})
			if len(cmds) >= 256 {
				break
			}
		}
	}
	// A defaults file with no command line: its variables are one.
	if len(cmds) == 0 {
		var args []string
		if a, ok := vars["DROPBEAR_EXTRA_ARGS"]; ok {
			args = append(args, a...)
		}
		if a, ok := vars["DROPBEAR_ARGS"]; ok {
			args = append(args, a...)
		}
		if len(args) > 0 || len(vars["DROPBEAR_PORT"]) > 0 {
			for _, p := range vars["DROPBEAR_PORT"] {
				args = append(args, "-p", p)
			}
			cmds = append(cmds, configLine{strings.Join(args, " "), 1})
		}
	}
	for i, cmd := range cmds {
		var words []string
		for _, w := range strings.Fields(cmd.text) {
			w = strings.Trim(w, `"'`)
			if name, ok := varRef(w); ok {
				if v, ok := vars[name]; ok {
					words = append(words, v...)
					continue
				}
			}
			words = append(words, w)
		}
		flags, ports := dropbearFlagSet(words)
		if i == 0 {
			c.line = cmd.n
			for _, g := range []byte("sgwjk") {
				c.guards[g] = flags[g]
			}
		}
		for g := range c.guards {
			c.guards[g] = c.guards[g] && flags[g]
		}
		for _, o := range []byte("Ba") {
			if flags[o] && c.opens[o] == 0 {
				c.opens[o] = cmd.n
			}
		}
		if len(ports) == 0 {
			ports = []string{"22"}
		}
		for _, p := range ports {
			e := exposeAll
			if h, _, ok := strings.Cut(p, ":"); ok || strings.HasPrefix(p, "[") {
				if strings.HasPrefix(p, "[") {
					h = p
				}
				e = addrExposure(h)
			}
			if len(c.ports) < 64 {
				c.ports = append(c.ports, p)
			}
			c.expose = max(c.expose, e)
		}
		c.n++
	}
	return c
}

// varRef reads "$NAME" or "${NAME}".
func varRef(w string) (string, bool) {
	if !strings.HasPrefix(w, "$") {
		return "", false
	}
	w = strings.TrimPrefix(w[1:], "{")
	w = strings.TrimSuffix(w, "}")
	return w, w != ""
}

// dropbearArgs returns the arguments of a dropbear command line, or nil
// when the command does not start dropbear.
func dropbearArgs(w []string) []string {
	switch cmdName(w[0]) {
	case "dropbear":
		return append([]string{}, w[1:]...)
	case "start-stop-daemon":
		isDB := false
		for i, a := range w {
			if (a == "--exec" || a == "-x" || a == "--startas" || a == "-a") && i+1 < len(w) && cmdName(w[i+1]) == "dropbear" {
				isDB = true
			}
			if a == "--" && isDB {
				return append([]string{}, w[i+1:]...)
			}
		}
		if isDB {
			return []string{}
		}
	case "procd_set_param", "procd_append_param":
		if len(w) > 2 && w[1] == "command" && cmdName(w[2]) == "dropbear" {
			return append([]string{}, w[3:]...)
		}
	}
	return nil
}

// dropbearFlagSet reads dropbear's options: single-letter flags, combined
// or not, and the listening addresses of -p.
func dropbearFlagSet(words []string) (map[byte]bool, []string) {
	flags := map[byte]bool{}
	var ports []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if len(w) < 2 || w[0] != '-' || w[1] == '-' {
			continue
		}
		for j := 1; j < len(w); j++ {
			c := w[j]
			flags[c] = true
			if strings.IndexByte(dropbearArgFlags, c) >= 0 {
				arg := w[j+1:]
				if arg == "" && i+1 < len(words) {
					i++
					arg = words[i]
				}
				if c == 'p' && arg != "" && len(ports) < 64 {
					ports = append(ports, arg)
				}
				break
			}
		}
	}
	return flags, ports
}

var dropbearGuardMeaning = map[byte][2]string{
	's': {"disable password logins", "password logins enabled"},
	'g': {"disable root password logins", "root may log in with a password"},
	'w': {"disallow root logins", "root logins allowed"},
	'j': {"disable local port forwarding", "local port forwarding enabled"},
	'k': {"disable remote port forwarding", "remote port forwarding enabled"},
}

var dropbearOpenMeaning = map[byte][2]string{
	'B': {"allow blank password logins", "accounts with an empty password may log in"},
	'a': {"allow connections to forwarded ports", "forwarded ports open to other hosts"},
}

// judgeDropbearFlags compares dropbear's command lines; with none in the
// old version (or no old version), with dropbear's defaults.
func judgeDropbearFlags(oldB, curB []byte) []weakening {
	cur := parseDropbear(curB)
	if cur.n == 0 {
		return nil
	}
	old := dropbearConf{guards: map[byte]bool{}, opens: map[byte]int{}, expose: exposeAll}
	if oldB != nil {
		if o := parseDropbear(oldB); o.n > 0 {
			old = o
		}
	}
	var out []weakening
	for _, g := range []byte("sgwjk") {
		if old.guards[g] && !cur.guards[g] {
			m := dropbearGuardMeaning[g]
			out = append(out, weakening{fmt.Sprintf("-%c (%s)", g, m[0]), "set", "removed", m[1], cur.line})
		}
	}
	for _, o := range []byte("Ba") {
		if cur.opens[o] > 0 && old.opens[o] == 0 {
			m := dropbearOpenMeaning[o]
			out = append(out, weakening{fmt.Sprintf("-%c (%s)", o, m[0]), "unset", "set", m[1], cur.opens[o]})
		}
	}
	if cur.expose > old.expose {
		out = append(out, weakening{"-p (listening address)", strings.Join(old.ports, " "), strings.Join(cur.ports, " "),
			"dropbear listens on " + cur.expose.String(), cur.line})
	}
	return out
}

// judgeDropbearUCI compares OpenWrt's dropbear instances, matched by name
// or position; a new instance is compared with the first old one, or with
// the defaults (passwords on, every interface).
func judgeDropbearUCI(oldB, curB []byte) []weakening {
	sections := func(b []byte) []*uciSection {
		var out []*uciSection
		for _, s := range parseUCI(b) {
			if s.typ == "dropbear" {
				out = append(out, s)
			}
		}
		return out
	}
	olds := sections(oldB)
	byKey := map[string]*uciSection{}
	for _, s := range olds {
		byKey[sectionKey(s)] = s
	}
	defaults := &uciSection{options: map[string]string{}, lines: map[string]int{}, lists: map[string][]string{}}
	var out []weakening
	for _, s := range sections(curB) {
		if !uciBool(s.get("enable", "1"), true) {
			continue
		}
		o := byKey[sectionKey(s)]
		if o == nil && len(olds) > 0 {
			o = olds[0]
		}
		if o == nil {
			o = defaults
		}
		for _, b := range []struct{ opt, meaning string }{
			{"PasswordAuth", "password logins enabled"},
			{"RootPasswordAuth", "root may log in with a password"},
		} {
			ob, nb := uciBool(o.get(b.opt, "on"), true), uciBool(s.get(b.opt, "on"), true)
			if !ob && nb {
				out = append(out, weakening{"option " + b.opt, onOff(ob), onOff(nb), b.meaning, s.lines[b.opt]})
			}
		}
		if ob, nb := uciBool(o.get("GatewayPorts", "off"), false), uciBool(s.get("GatewayPorts", "off"), false); !ob && nb {
			out = append(out, weakening{"option GatewayPorts", onOff(ob), onOff(nb), "forwarded ports open to other hosts", s.lines["GatewayPorts"]})
		}
		oi, ni := o.get("Interface", ""), s.get("Interface", "")
		switch {
		case oi != "" && ni == "":
			out = append(out, weakening{"option Interface", oi, "(unset)", "dropbear listens on all interfaces", s.line})
		case oi != "" && !wanName(oi) && wanName(ni):
			out = append(out, weakening{"option Interface", oi, ni, "dropbear listens on the WAN interface", s.lines["Interface"]})
		}
	}
	return out
}
