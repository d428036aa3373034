package analyze

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Config reports config changes that weaken authentication or open
// exposure (config-weakened), judged by what both versions mean once
// parsed, not by their changed lines: comments, order and blanks change
// nothing. The families, one file each:
//
//   - config_ssh.go: OpenSSH sshd_config and its drop-ins (first value
//     wins, Match blocks apply only conditionally), dropbear command lines
//     and /etc/default/dropbear, OpenWrt's /etc/config/dropbear;
//   - config_inet.go: inetd.conf and xinetd services (telnet, rsh, rlogin,
//     rexec, tftp), inittab entries that give a shell without login or
//     start telnetd, telnetd started from an init script;
//   - config_httpd.go: busybox httpd.conf allow/deny and auth lines;
//   - config_fw.go: iptables-save files and iptables command lines,
//     nftables rulesets, OpenWrt's /etc/config/firewall.
//
// A file with no baseline version is judged against what the program
// does without it: OpenSSH's and dropbear's compiled-in defaults, no inetd
// service, no telnetd, OpenWrt's stock firewall (which accepts only DHCP
// renewals, ICMP, IGMP and IPsec from wan). The findings are disclosed only
// by a manifest allow entry naming config-weakened for the path: declaring
// the file changed does not declare what the change does.
type Config struct{}

var _ pipeline.Analyzer = Config{}

// Name implements pipeline.Analyzer.
func (Config) Name() string { return "config" }

const (
	// maxConfigFile bounds how much of each version of a config is read.
	maxConfigFile = 1 << 20
	// maxConfigItems bounds the lines, rules or sections a parser keeps,
	// and maxConfigFindings the findings of one file.
	maxConfigItems    = 20000
	maxConfigFindings = 50
)

// weakening is one setting made weaker.
type weakening struct {
	setting, before, after string
	// meaning says what the change lets in, for the message.
	meaning string
	// line is the line of the new version that holds the setting, 0 when
	// the setting is gone or implied.
	line int
}

// configFamily is one kind of config and how to judge it.
type configFamily struct {
	name  string
	match func(p string) bool
	// judge compares the parsed versions; old is nil when the file is new.
	judge func(old, cur []byte) []weakening
	// judgePath, when set, is judge for a family that needs the path.
	judgePath func(p string, old, cur []byte) []weakening
}

func (f configFamily) run(p string, old, cur []byte) []weakening {
	if f.judgePath != nil {
		return f.judgePath(p, old, cur)
	}
	return f.judge(old, cur)
}

var configFamilies = []configFamily{
	{name: "sshd", match: isSSHDConfig, judge: judgeSSHD},
	{name: "dropbear", match: isDropbearScript, judge: judgeDropbearFlags},
	{name: "dropbear-uci", match: func(p string) bool { return p == "/etc/config/dropbear" }, judge: judgeDropbearUCI},
	{name: "inetd", match: func(p string) bool { return path.Base(p) == "inetd.conf" }, judge: judgeInetd},
	{name: "xinetd", match: func(p string) bool { return p == "/etc/xinetd.conf" || strings.HasPrefix(p, "/etc/xinetd.d/") }, judge: judgeXinetd},
	{name: "inittab", match: func(p string) bool { return p == "/etc/inittab" }, judge: judgeInittab},
	{name: "telnetd", match: isInitScript, judge: judgeTelnetd},
	{name: "httpd", match: func(p string) bool { return path.Base(p) == "httpd.conf" }, judge: judgeHTTPD},
	{name: "iptables", match: isIptablesFile, judgePath: judgeIptables},
	{name: "nftables", match: isNftablesFile, judge: judgeNftables},
	{name: "firewall-uci", match: func(p string) bool { return p == "/etc/config/firewall" }, judge: judgeFirewallUCI},
}

// Analyze implements pipeline.Analyzer.
func (Config) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ch.New == nil || ch.New.Type != pipeline.TypeFile || ch.Nested ||
			(ch.Kind != pipeline.ChangeAdded && ch.Kind != pipeline.ChangeModified) {
			continue
		}
		var fams []configFamily
		for _, f := range configFamilies {
			if f.match(ch.Path) {
				fams = append(fams, f)
			}
		}
		if len(fams) == 0 {
			continue
		}
		old, cur, err := readVersions(ctx, ch, maxConfigFile)
		if err != nil {
			return nil, err
		}
		if bytes.IndexByte(cur, 0) >= 0 {
			continue // a binary, not a config
		}
		if ch.Kind == pipeline.ChangeAdded || ch.Old == nil || bytes.IndexByte(old, 0) >= 0 {
			old = nil
		} else if old == nil {
			old = []byte{}
		}
		n := 0
		for _, fam := range fams {
			for _, w := range fam.run(ch.Path, old, cur) {
				if n == maxConfigFindings {
					break
				}
				n++
				out = append(out, configFinding(ch, fam.name, w))
			}
		}
	}
	return out, nil
}

func configFinding(ch *pipeline.Change, family string, w weakening) pipeline.Finding {
	label := strings.TrimSuffix(family, "-uci")
	msg := fmt.Sprintf("%s: %s changed from %s to %s", label, w.setting, w.before, w.after)
	if w.meaning != "" {
		msg += ": " + w.meaning
	}
	ev := map[string]any{"setting": w.setting, "before": w.before, "after": w.after, "family": family, "line": w.line}
	f := finding(pipeline.IDConfigWeakened, ch, msg, ev)
	f.AllowOnly = true
	return f
}

// configLine is a meaningful line of a config and its number.
type configLine struct {
	text string
	n    int
}

// configLines are a config's lines without comments (a "#" at the start
// or after a blank) and blanks, trimmed, with runs of blanks made one and
// backslash continuations joined; at most maxConfigItems.
func configLines(b []byte) []configLine {
	var out []configLine
	var pending string
	start := 0
	for i, l := range bytes.Split(b, []byte("\n")) {
		if len(out) >= maxConfigItems {
			break
		}
		s := string(l)
		if pending == "" {
			start = i + 1
		}
		if strings.HasSuffix(strings.TrimRight(s, " \t\r"), "\\") && !strings.HasPrefix(strings.TrimSpace(s), "#") {
			pending += strings.TrimSuffix(strings.TrimRight(s, " \t\r"), "\\") + " "
			if len(pending) > 64<<10 {
				pending = ""
			}
			continue
		}
		s = stripComment(pending + s)
		pending = ""
		s = strings.Join(strings.Fields(s), " ")
		if s == "" {
			continue
		}
		out = append(out, configLine{s, start})
	}
	return out
}

// stripComment drops a "#" comment that starts the line or follows a
// blank, outside quotes.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

// unquote drops one pair of surrounding quotes.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// exposure ranks where a server listens: loopback only, some addresses,
// every address.
type exposure int

const (
	exposeLoopback exposure = iota
	exposeSome
	exposeAll
)

func (e exposure) String() string {
	return [...]string{"loopback only", "specific addresses", "all addresses"}[e]
}

// addrExposure ranks one listening address ("127.0.0.1", "[::1]:22",
// "0.0.0.0", "*", "localhost", a host name).
func addrExposure(a string) exposure {
	a = strings.TrimSpace(a)
	switch a {
	case "", "*", "0.0.0.0", "::", "[::]", "any", "0":
		return exposeAll
	case "localhost", "ip6-localhost":
		return exposeLoopback
	}
	a = strings.TrimPrefix(a, "[")
	if i := strings.IndexByte(a, ']'); i >= 0 {
		a = a[:i]
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		switch {
		case ip.IsLoopback():
			return exposeLoopback
		case ip.IsUnspecified():
			return exposeAll
		}
		return exposeSome
	}
	if ap, err := netip.ParseAddrPort(a); err == nil {
		return addrExposure(ap.Addr().String())
	}
	if h, _, ok := strings.Cut(a, ":"); ok && strings.Count(a, ":") == 1 {
		if h == "" {
			return exposeAll
		}
		return addrExposure(h)
	}
	return exposeSome
}

// wanName reports an interface or zone name that faces the internet.
func wanName(s string) bool {
	s = strings.ToLower(unquote(s))
	return strings.Contains(s, "wan") || strings.HasPrefix(s, "ppp") || s == "*" || s == "any"
}

// anySource reports a source address restriction that is none at all.
func anySource(s string) bool {
	switch strings.TrimSpace(s) {
	case "", "0.0.0.0/0", "::/0", "0/0", "any", "*":
		return true
	}
	return false
}

// parsePrefix reads an address or network the way config files write it:
// "10.0.0.1", "10.0.0.0/8", "10.0.0.0/255.0.0.0" or busybox's "10.0.".
func parsePrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return netip.Prefix{}, false
		}
		if m, err := netip.ParseAddr(bits); err == nil && m.Is4() {
			n := 0
			for _, b := range m.As4() {
				for ; b&0x80 != 0; b <<= 1 {
					n++
				}
			}
			bits = fmt.Sprint(n)
		}
		var n int
		if _, err := fmt.Sscanf(bits, "%d", &n); err != nil || n < 0 || n > a.BitLen() {
			return netip.Prefix{}, false
		}
		p, err := a.Prefix(n)
		return p, err == nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	// A dotted prefix: "172.20." or "10".
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Prefix{}, false
	}
	var b [4]byte
	for i, p := range parts {
		var v int
		if _, err := fmt.Sscanf(p, "%d", &v); err != nil || v < 0 || v > 255 || fmt.Sprint(v) != p {
			return netip.Prefix{}, false
		}
		b[i] = byte(v)
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts)), true
}

// covers reports whether prefix a holds all of b.
func covers(a, b netip.Prefix) bool {
	return a.Addr().BitLen() == b.Addr().BitLen() && a.Bits() <= b.Bits() && a.Contains(b.Addr())
}

// uciSection is one "config TYPE ['NAME']" section of an OpenWrt UCI file.
type uciSection struct {
	typ, name string
	index     int // among the sections of its type
	line      int
	options   map[string]string
	lines     map[string]int
	lists     map[string][]string
}

func (s *uciSection) get(k, def string) string {
	if v, ok := s.options[k]; ok {
		return v
	}
	if l, ok := s.lists[k]; ok {
		return strings.Join(l, " ")
	}
	return def
}

// parseUCI reads an OpenWrt UCI config: sections, options and lists.
func parseUCI(b []byte) []*uciSection {
	var out []*uciSection
	var cur *uciSection
	count := map[string]int{}
	for _, l := range configLines(b) {
		w := uciWords(l.text)
		if len(w) == 0 {
			continue
		}
		switch w[0] {
		case "config":
			if len(out) >= maxConfigItems {
				return out
			}
			cur = &uciSection{line: l.n, options: map[string]string{}, lines: map[string]int{}, lists: map[string][]string{}}
			if len(w) > 1 {
				cur.typ = w[1]
			}
			if len(w) > 2 {
				cur.name = w[2]
			}
			cur.index = count[cur.typ]
			count[cur.typ]++
			out = append(out, cur)
		case "option":
			if cur != nil && len(w) >= 2 {
				v := ""
				if len(w) > 2 {
					v = w[2]
				}
				cur.options[w[1]] = v
				cur.lines[w[1]] = l.n
			}
		case "list":
			if cur != nil && len(w) >= 3 && len(cur.lists[w[1]]) < 1000 {
				cur.lists[w[1]] = append(cur.lists[w[1]], w[2])
				cur.lines[w[1]] = l.n
			}
		}
	}
	return out
}

// uciWords splits a UCI line into words, quotes removed.
func uciWords(s string) []string {
	var out []string
	var b strings.Builder
	var q byte
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0 && c == q:
			q = 0
		case q != 0:
			b.WriteByte(c)
		case c == '\'' || c == '"':
			q, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

// uciBool reads a UCI boolean, def when unset or unreadable.
func uciBool(v string, def bool) bool {
	switch strings.ToLower(v) {
	case "1", "on", "yes", "true", "enabled":
		return true
	case "0", "off", "no", "false", "disabled":
		return false
	}
	return def
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// sectionKey names a UCI section for matching it across versions: its
// name, or its type and index for an anonymous one.
func sectionKey(s *uciSection) string {
	if s.name != "" {
		return s.typ + " " + s.name
	}
	return fmt.Sprintf("%s[%d]", s.typ, s.index)
}

// shellCommands splits a shell line into its simple commands and each into
// words, with leading variable assignments and wrappers (exec, nohup,
// env, busybox) dropped.
func shellCommands(line string) [][]string {
	var out [][]string
	for _, part := range splitShell(line) {
		w := strings.Fields(part)
		for len(w) > 0 {
			first := w[0]
			if i := strings.IndexByte(first, '='); i > 0 && !strings.HasPrefix(first, "-") {
				w = w[1:]
				continue
			}
			switch path.Base(first) {
			case "exec", "nohup", "env", "busybox", "setsid", "nice", "then", "do", "else", "{", "(", "!":
				w = w[1:]
				continue
			}
			break
		}
		if len(w) > 0 {
			out = append(out, w)
		}
		if len(out) >= 64 {
			break
		}
	}
	return out
}

// splitShell splits on ; && || | & outside quotes.
func splitShell(s string) []string {
	var out []string
	var q byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == ';' || c == '|' || c == '&' || c == '`':
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// cmdName is a command word's program: its base name, quotes dropped.
func cmdName(w string) string { return path.Base(strings.Trim(w, `"'()`)) }
