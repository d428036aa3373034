package analyze

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Packet filters: iptables-save files and iptables command lines, nftables
// rulesets, OpenWrt's /etc/config/firewall. A rule is known by what it
// says, not by its place: a moved rule is the same rule.

func isIptablesFile(p string) bool {
	b := path.Base(p)
	switch {
	case b == "rules.v4" || b == "rules.v6" || b == "firewall.user" || strings.Contains(b, "iptables") || strings.HasSuffix(b, ".ipt"):
		return true
	case strings.HasPrefix(p, "/etc/iptables/") || strings.HasPrefix(p, "/etc/sysconfig/ip"):
		return true
	}
	return isInitScript(p)
}

func isNftablesFile(p string) bool {
	return path.Base(p) == "nftables.conf" || strings.HasSuffix(p, ".nft") ||
		strings.HasPrefix(p, "/etc/nftables.d/") || strings.HasPrefix(p, "/etc/nftables/") || strings.HasPrefix(p, "/usr/share/nftables.d/")
}

// fwRule is a filter rule of an input chain.
type fwRule struct {
	key, text, target string
	line              int
}

// fwChains is what a file sets for the input chains: their policies and
// rules, by family and chain.
type fwChains struct {
	policy map[string]configLine
	rules  map[string][]fwRule
	any    bool
}

func newFWChains() fwChains {
	return fwChains{policy: map[string]configLine{}, rules: map[string][]fwRule{}}
}

func (c *fwChains) add(chain string, r fwRule) {
	for _, o := range c.rules[chain] {
		if o.key == r.key {
			return
		}
	}
	if len(c.rules[chain]) < maxConfigItems {
		c.rules[chain] = append(c.rules[chain], r)
	}
}

// inputChain reports a chain that filters traffic to the host, and
// whether only WAN traffic reaches it (OpenWrt's zone_wan_input,
// input_wan_rule, input_wan).
func inputChain(name string) (input, wan bool) {
	l := strings.ToLower(name)
	if l == "input" {
		return true, false
	}
	if strings.Contains(l, "input") && wanName(l) {
		return true, true
	}
	return false, false
}

func parseIptables(b []byte, v6 bool) fwChains {
	c := newFWChains()
	table := "filter"
	fam := "ip"
	if v6 {
		fam = "ip6"
	}
	for _, l := range configLines(b) {
		t := l.text
		switch {
		case strings.HasPrefix(t, "*"):
			table = t[1:]
			c.any = true
			continue
		case strings.HasPrefix(t, ":") && table == "filter":
			f := strings.Fields(t[1:])
			if len(f) >= 2 {
				if in, _ := inputChain(f[0]); in && f[1] != "-" {
					c.policy[fam+" "+f[0]] = configLine{strings.ToUpper(f[1]), l.n}
				}
			}
			continue
		case strings.HasPrefix(t, "-A ") || strings.HasPrefix(t, "-I "):
			if table == "filter" {
				iptRule(&c, fam, strings.Fields(t), l.n)
			}
			continue
		}
		for _, w := range shellCommands(t) {
			name := cmdName(w[0])
			if !strings.HasPrefix(name, "iptables") && !strings.HasPrefix(name, "ip6tables") {
				continue
			}
			c.any = true
			f := "ip"
			if strings.HasPrefix(name, "ip6") {
				f = "ip6"
			}
			tbl := "filter"
			var rest []string
			for i := 1; i < len(w); i++ {
				if (w[i] == "-t" || w[i] == "--table") && i+1 < len(w) {
					tbl = w[i+1]
					i++
					continue
				}
				rest = append(rest, w[i])
			}
			if tbl != "filter" || len(rest) < 2 {
				continue
			}
			switch rest[0] {
			case "-P", "--policy":
				if len(rest) >= 3 {
					if in, _ := inputChain(rest[1]); in {
						c.policy[f+" "+rest[1]] = configLine{strings.ToUpper(rest[2]), l.n}
					}
				}
			case "-A", "--append", "-I", "--insert":
				iptRule(&c, f, rest, l.n)
			}
		}
	}
	return c
}

// iptRule records an -A or -I rule of an input chain.
func iptRule(c *fwChains, fam string, w []string, line int) {
	if len(w) < 2 {
		return
	}
	chain := w[1]
	if in, _ := inputChain(chain); !in {
		return
	}
	args := w[2:]
	if (w[0] == "-I" || w[0] == "--insert") && len(args) > 0 && isNumber(args[0]) {
		args = args[1:]
	}
	target := ""
	for i, a := range args {
		if (a == "-j" || a == "--jump") && i+1 < len(args) {
			target = strings.ToUpper(args[i+1])
		}
	}
	text := strings.Join(args, " ")
	c.add(fam+" "+chain, fwRule{key: text, text: "-A " + chain + " " + text, target: target, line: line})
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// iptOpens says what an ACCEPT rule opens ("tcp port 23"), "" when it is
// restricted: to established traffic, a source, loopback or a LAN
// interface, or ICMP.
func iptOpens(args []string, wanChain bool) string {
	proto, port, from := "", "", " open from anywhere"
	if wanChain {
		from = " open from the WAN"
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		neg := i > 0 && args[i-1] == "!"
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch a {
		case "-s", "--source", "--src", "--src-range":
			if !neg && !anySource(next) {
				return ""
			}
		case "-i", "--in-interface":
			if !neg && (next == "lo" || !wanName(next)) && !wanChain {
				return ""
			}
			if !neg {
				from = " open from the WAN"
			}
		case "-p", "--protocol":
			proto = strings.ToLower(next)
		case "--dport", "--dports", "--destination-port", "--destination-ports":
			port = next
		case "--state", "--ctstate":
			if !strings.Contains(strings.ToUpper(next), "NEW") {
				return ""
			}
		}
	}
	if strings.Contains(proto, "icmp") && port == "" {
		return ""
	}
	return describeOpen(proto, port) + from
}

func describeOpen(proto, port string) string {
	switch {
	case port != "" && proto != "":
		return proto + " port " + port
	case port != "":
		return "port " + port
	case proto != "":
		return "every " + proto + " port"
	}
	return "every port"
}

// judgeIptables compares iptables rules; an ip6tables-save file is told by
// its path (rules.v6, ip6tables), ip6tables commands name themselves.
func judgeIptables(p string, oldB, curB []byte) []weakening {
	v6 := strings.Contains(path.Base(p), "6")
	return judgeChains(parseIptables(oldB, v6), parseIptables(curB, v6), func(r fwRule, wan bool) string {
		return iptOpens(strings.Fields(r.key), wan)
	})
}

// judgeChains compares two files' input chains.
func judgeChains(old, cur fwChains, opens func(fwRule, bool) string) []weakening {
	if !cur.any {
		return nil
	}
	var out []weakening
	for _, ch := range sortedKeys(old.policy) {
		op := old.policy[ch]
		np, ok := cur.policy[ch]
		if op.text != "DROP" && op.text != "REJECT" {
			continue
		}
		switch {
		case !ok:
			out = append(out, weakening{"policy of " + ch, op.text, "(unset: ACCEPT)", "everything not dropped by a rule reaches the host", 0})
		case np.text == "ACCEPT":
			out = append(out, weakening{"policy of " + ch, op.text, np.text, "everything not dropped by a rule reaches the host", np.n})
		}
	}
	for _, ch := range sortedKeys(cur.rules) {
		_, wan := inputChain(ch[strings.IndexByte(ch, ' ')+1:])
		had := map[string]bool{}
		for _, r := range old.rules[ch] {
			had[r.key] = true
		}
		for _, r := range cur.rules[ch] {
			if had[r.key] || r.target != "ACCEPT" {
				continue
			}
			if what := opens(r, wan); what != "" {
				out = append(out, weakening{"rule in " + ch, "(none)", r.text, what, r.line})
			}
		}
	}
	for _, ch := range sortedKeys(old.rules) {
		has := map[string]bool{}
		for _, r := range cur.rules[ch] {
			has[r.key] = true
		}
		for _, r := range old.rules[ch] {
			if !has[r.key] && (r.target == "DROP" || r.target == "REJECT") {
				out = append(out, weakening{"rule in " + ch, r.text, "(removed)", "what the rule blocked now reaches the host", 0})
			}
		}
	}
	return out
}

// --- nftables ---------------------------------------------------------------

var nftFamilies = map[string]bool{"ip": true, "ip6": true, "inet": true, "arp": true, "bridge": true, "netdev": true}

// parseNft reads a ruleset's chains: their hook, policy and rules.
func parseNft(b []byte) fwChains {
	c := newFWChains()
	hooks := map[string]string{}
	type frame struct{ kind, name string }
	var stack []frame
	var cur strings.Builder
	setDepth, line, start := 0, 1, 1
	var q byte
	top := func() frame {
		if len(stack) == 0 {
			return frame{}
		}
		return stack[len(stack)-1]
	}
	flush := func() {
		s := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		if s == "" {
			return
		}
		w := strings.Fields(s)
		f := top()
		switch {
		case f.kind == "chain":
			switch {
			case w[0] == "type":
				for i := range w {
					if w[i] == "hook" && i+1 < len(w) {
						hooks[f.name] = w[i+1]
					}
					if w[i] == "policy" && i+1 < len(w) {
						c.policy[f.name] = configLine{strings.ToUpper(strings.TrimSuffix(w[i+1], ";")), start}
					}
				}
			case w[0] == "policy" && len(w) > 1:
				c.policy[f.name] = configLine{strings.ToUpper(w[1]), start}
			default:
				c.add(f.name, fwRule{key: s, text: s, target: nftVerdict(w), line: start})
			}
		case (w[0] == "add" || w[0] == "insert") && len(w) > 3 && w[1] == "rule":
			rest := w[2:]
			fam := "ip"
			if nftFamilies[rest[0]] {
				fam, rest = rest[0], rest[1:]
			}
			if len(rest) < 3 {
				return
			}
			name := fam + " " + rest[0] + " " + rest[1]
			body := rest[2:]
			if len(body) > 1 && (body[0] == "position" || body[0] == "handle" || body[0] == "index") {
				body = body[min(2, len(body)):]
			}
			if len(body) > 0 {
				t := strings.Join(body, " ")
				c.add(name, fwRule{key: t, text: t, target: nftVerdict(body), line: start})
			}
		}
	}
	chainName := func(w []string, tableName string) string {
		// "chain NAME" inside a table, "add chain [FAMILY] TABLE NAME".
		if w[0] == "chain" {
			return tableName + " " + at(w, 1)
		}
		if len(w) < 2 {
			return ""
		}
		rest := w[2:]
		fam := "ip"
		if len(rest) > 0 && nftFamilies[rest[0]] {
			fam, rest = rest[0], rest[1:]
		}
		if len(rest) < 2 {
			return ""
		}
		return fam + " " + rest[0] + " " + rest[1]
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if ch == '\n' {
			line++
		}
		switch {
		case q != 0:
			if ch == q {
				q = 0
			}
			cur.WriteByte(ch)
			continue
		case ch == '"':
			q = ch
			cur.WriteByte(ch)
			continue
		case ch == '#':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			i--
			continue
		}
		if cur.Len() == 0 || strings.TrimSpace(cur.String()) == "" {
			start = line
		}
		switch ch {
		case '{':
			w := strings.Fields(cur.String())
			f := top()
			block := len(w) > 0 && setDepth == 0 && f.kind != "chain" && f.kind != "skip"
			if block {
				lead := w[0]
				if (lead == "add" || lead == "create") && len(w) > 1 {
					lead = w[1]
				}
				switch lead {
				case "table", "chain":
				case "set", "map", "flowtable", "counter", "quota", "ct", "limit", "secmark", "synproxy":
					block = f.kind == "table"
				default:
					block = false
				}
			}
			if !block {
				setDepth++
				cur.WriteString(" { ")
				continue
			}
			switch {
			case len(stack) >= 64:
				return c
			case w[0] == "table" || at(w, 1) == "table":
				rest := w[1:]
				if w[0] != "table" {
					rest = w[2:]
				}
				fam := "ip"
				if len(rest) > 0 && nftFamilies[rest[0]] {
					fam, rest = rest[0], rest[1:]
				}
				name := fam
				if len(rest) > 0 {
					name += " " + rest[0]
				}
				stack = append(stack, frame{"table", name})
			case w[0] == "chain" || at(w, 1) == "chain":
				stack = append(stack, frame{"chain", chainName(w, f.name)})
			default:
				stack = append(stack, frame{"skip", ""})
			}
			c.any = true
			cur.Reset()
		case '}':
			if setDepth > 0 {
				setDepth--
				cur.WriteString(" } ")
				continue
			}
			flush()
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case '\n', ';':
			if setDepth > 0 {
				cur.WriteByte(' ')
				continue
			}
			flush()
		default:
			if cur.Len() < 64<<10 {
				cur.WriteByte(ch)
			}
		}
	}
	flush()
	// Keep the input chains only: hooked on input, or named so.
	keep := newFWChains()
	keep.any = c.any || len(c.rules) > 0
	for name, rs := range c.rules {
		if nftInput(name, hooks) {
			keep.rules[name] = rs
		}
	}
	for name, p := range c.policy {
		if nftInput(name, hooks) {
			keep.policy[name] = p
		}
	}
	return keep
}

func at(w []string, i int) string {
	if i < len(w) {
		return w[i]
	}
	return ""
}

func nftInput(name string, hooks map[string]string) bool {
	if hooks[name] == "input" {
		return true
	}
	if h, ok := hooks[name]; ok && h != "" {
		return false
	}
	in, _ := inputChain(name[strings.LastIndexByte(name, ' ')+1:])
	return in
}

// nftStates reads the conntrack states that follow "ct state": one word,
// a comma list or an anonymous set.
func nftStates(w []string) map[string]bool {
	out := map[string]bool{}
	if len(w) == 0 {
		return out
	}
	if w[0] == "{" {
		for j := 1; j < len(w) && w[j] != "}" && j < 64; j++ {
			out[w[j]] = true
		}
		return out
	}
	for j := 0; j < len(w) && j < 64; j += 2 {
		out[w[j]] = true
		if j+1 >= len(w) || w[j+1] != "," {
			break
		}
	}
	return out
}

// nftVerdict is a rule's final verdict, upper case.
func nftVerdict(w []string) string {
	v := ""
	for i, x := range w {
		if i > 0 && (w[i-1] == "vmap" || w[i-1] == "map") {
			break
		}
		switch x {
		case "accept", "drop", "reject":
			v = strings.ToUpper(x)
		}
	}
	return v
}

// nftOpens says what an accept rule opens, "" when it is restricted.
func nftOpens(r fwRule, wanChain bool) string {
	w := strings.Fields(strings.NewReplacer("{", " { ", "}", " } ", ",", " , ").Replace(r.key))
	proto, port, from := "", "", " open from anywhere"
	if wanChain {
		from = " open from the WAN"
	}
	for i := 0; i < len(w); i++ {
		x := w[i]
		next := ""
		if i+1 < len(w) {
			next = w[i+1]
		}
		switch x {
		case "saddr":
			if next != "!=" && !anySource(next) {
				return ""
			}
		case "iif", "iifname":
			if next == "{" {
				// An anonymous set of interfaces: WAN if any is.
				for j := i + 2; j < len(w) && w[j] != "}" && j < i+66; j++ {
					if w[j] != "," && wanName(w[j]) {
						next = w[j]
						break
					}
				}
			}
			if next != "!=" && !wanChain && (unquote(next) == "lo" || !wanName(next) || next == "{") {
				return ""
			}
			if next != "!=" {
				from = " open from the WAN"
			}
		case "state":
			if i > 0 && w[i-1] == "ct" && !nftStates(w[i+1:])["new"] {
				return ""
			}
		case "tcp", "udp", "sctp", "dccp":
			proto = x
		case "icmp", "icmpv6", "ipv6-icmp":
			if port == "" {
				proto = "icmp"
			}
		case "dport":
			if next == "{" {
				var ps []string
				for j := i + 2; j < len(w) && w[j] != "}" && len(ps) < 16; j++ {
					if w[j] != "," {
						ps = append(ps, w[j])
					}
				}
				port = strings.Join(ps, ",")
			} else {
				port = next
			}
		}
	}
	if proto == "icmp" && port == "" {
		return ""
	}
	return describeOpen(proto, port) + from
}

func judgeNftables(oldB, curB []byte) []weakening {
	return judgeChains(parseNft(oldB), parseNft(curB), nftOpens)
}

// --- OpenWrt firewall ---------------------------------------------------------

// uciFirewall is what an OpenWrt firewall config lets in.
type uciFirewall struct {
	defaults *uciSection
	zones    map[string]*uciSection
	wan      map[string]bool // zone names facing the WAN
	rules    map[string]*uciSection
	forwards map[string]*uciSection
}

// ruleKey is what a rule or redirect does: its options but the name.
func ruleKey(s *uciSection) string {
	var parts []string
	for k, v := range s.options {
		if k != "name" && k != "enabled" {
			parts = append(parts, k+"="+v)
		}
	}
	for k, v := range s.lists {
		if k != "name" {
			parts = append(parts, k+"="+strings.Join(v, " "))
		}
	}
	sort.Strings(parts)
	return s.typ + " " + strings.Join(parts, " ")
}

func parseUCIFirewall(b []byte) uciFirewall {
	f := uciFirewall{zones: map[string]*uciSection{}, wan: map[string]bool{}, rules: map[string]*uciSection{}, forwards: map[string]*uciSection{}}
	for _, s := range parseUCI(b) {
		switch s.typ {
		case "defaults":
			if f.defaults == nil {
				f.defaults = s
			}
		case "zone":
			name := s.get("name", s.name)
			f.zones[name] = s
			if wanName(name) || wanName(s.get("network", "")) || wanName(s.get("device", "")) {
				f.wan[name] = true
			}
		case "rule", "redirect":
			if uciBool(s.get("enabled", "1"), true) {
				f.rules[ruleKey(s)] = s
			}
		}
	}
	return f
}

// fromWAN reports a source zone that holds the WAN ("*" holds every zone).
func (f uciFirewall) fromWAN(src string) bool {
	return src == "*" || f.wan[src] || (len(f.zones) == 0 && wanName(src))
}

// stockRule is a rule OpenWrt's own firewall carries from wan: DHCP and
// DHCPv6 renewals, ICMP, IGMP, IPsec.
func stockRule(s *uciSection) bool {
	proto := strings.ToLower(s.get("proto", ""))
	port := s.get("dest_port", "")
	switch {
	case strings.Contains(proto, "icmp") || proto == "igmp" || proto == "esp" || proto == "ah" || s.get("icmp_type", "") != "":
		return true
	case proto == "udp" && (port == "68" || port == "546" || port == "500"):
		return true
	}
	return false
}

func judgeFirewallUCI(oldB, curB []byte) []weakening {
	old, cur := parseUCIFirewall(oldB), parseUCIFirewall(curB)
	var out []weakening
	closed := func(v string) bool { v = strings.ToUpper(v); return v == "REJECT" || v == "DROP" }
	if old.defaults != nil && cur.defaults != nil {
		if ov, nv := old.defaults.get("input", "REJECT"), cur.defaults.get("input", "REJECT"); closed(ov) && strings.EqualFold(nv, "ACCEPT") {
			out = append(out, weakening{"defaults input", ov, nv, "traffic to the router from zones without a policy accepted", cur.defaults.lines["input"]})
		}
	}
	defIn := func(f uciFirewall) string {
		if f.defaults != nil {
			return f.defaults.get("input", "REJECT")
		}
		return "REJECT"
	}
	for _, name := range sortedKeys(cur.zones) {
		z := cur.zones[name]
		nv := z.get("input", defIn(cur))
		oz := old.zones[name]
		ov := "REJECT"
		if oz != nil {
			ov = oz.get("input", defIn(old))
		} else if !cur.wan[name] {
			continue // a new zone that is not the WAN
		}
		if closed(ov) && strings.EqualFold(nv, "ACCEPT") {
			m := "the router accepts everything from zone " + name
			if cur.wan[name] {
				m = "the router accepts everything from the WAN"
			}
			out = append(out, weakening{"zone " + name + " input", ov, nv, m, z.lines["input"]})
		}
		if cur.wan[name] && oz != nil {
			if ov, nv := oz.get("forward", "REJECT"), z.get("forward", "REJECT"); closed(ov) && strings.EqualFold(nv, "ACCEPT") {
				out = append(out, weakening{"zone " + name + " forward", ov, nv, "traffic from the WAN forwarded", z.lines["forward"]})
			}
		}
	}
	for _, k := range sortedKeys(cur.rules) {
		s := cur.rules[k]
		if _, had := old.rules[k]; had || !cur.fromWAN(s.get("src", "")) || !anySource(s.get("src_ip", "")) {
			continue
		}
		port := s.get("dest_port", "")
		proto := s.get("proto", "tcp udp")
		switch s.typ {
		case "rule":
			if !strings.EqualFold(s.get("target", ""), "ACCEPT") || stockRule(s) {
				continue
			}
			what := describeOpen(proto, port) + " open to the router from the WAN"
			if d := s.get("dest", ""); d != "" {
				what = describeOpen(proto, port) + " forwarded from the WAN to zone " + d
			}
			out = append(out, weakening{"rule " + s.get("name", sectionKey(s)), "(none)", "target ACCEPT from " + s.get("src", ""), what, s.line})
		case "redirect":
			if !strings.EqualFold(s.get("target", "DNAT"), "DNAT") {
				continue
			}
			what := fmt.Sprintf("port %s on the WAN forwarded to %s", s.get("src_dport", port), strings.TrimSpace(s.get("dest_ip", "")+" "+port))
			out = append(out, weakening{"redirect " + s.get("name", sectionKey(s)), "(none)", "DNAT from " + s.get("src", ""), what, s.line})
		}
	}
	for _, k := range sortedKeys(old.rules) {
		s := old.rules[k]
		if _, has := cur.rules[k]; has || s.typ != "rule" || !closed(s.get("target", "")) || !old.fromWAN(s.get("src", "")) {
			continue
		}
		out = append(out, weakening{"rule " + s.get("name", sectionKey(s)), "target " + strings.ToUpper(s.get("target", "")) + " from " + s.get("src", ""),
			"(removed)", describeOpen(s.get("proto", ""), s.get("dest_port", "")) + " no longer blocked from the WAN", 0})
	}
	return out
}
