package analyze

import (
	"bytes"
	"net/netip"
	"strings"
)

// urlSchemes are the schemes whose URLs name a place a device talks to.
var urlSchemes = map[string]bool{
	"http": true, "https": true, "ftp": true, "ftps": true, "tftp": true, "sftp": true, "ws": true, "wss": true,
	"mqtt": true, "mqtts": true, "telnet": true, "ssh": true, "tcp": true, "udp": true, "rtsp": true, "smtp": true,
	"ldap": true, "ldaps": true, "coap": true, "irc": true, "nntp": true, "rsync": true, "git": true, "svn": true,
}

// tlds are the top-level domains a host name must end in to count. Those
// that are also common file extensions (.sh, .so, .py, .pl, .pm, .in, .md,
// .cc, .rs, .go, .js…) are left out on purpose: "libc.so" and "init.sh"
// are not hosts.
var tlds = map[string]bool{
	"com": true, "net": true, "org": true, "edu": true, "gov": true, "mil": true, "int": true, "io": true, "info": true,
	"biz": true, "co": true, "us": true, "uk": true, "de": true, "fr": true, "cn": true, "ru": true, "jp": true, "kr": true,
	"tw": true, "hk": true, "nl": true, "eu": true, "ch": true, "se": true, "no": true, "fi": true, "dk": true, "it": true,
	"es": true, "br": true, "au": true, "ca": true, "xyz": true, "top": true, "online": true, "site": true, "club": true,
	"cloud": true, "dev": true, "app": true, "me": true, "tv": true, "tk": true, "ml": true, "ga": true, "cf": true,
	"gq": true, "onion": true, "su": true, "ir": true, "kp": true, "vn": true, "id": true, "th": true, "my": true,
	"sg": true, "ua": true, "by": true, "kz": true, "pw": true, "ws": true, "live": true, "icu": true,
	"shop": true, "work": true, "tech": true, "space": true, "website": true, "host": true, "link": true,
}

// extractEndpoints finds URLs, IPv4 and IPv6 addresses and host names in a
// run of text and calls emit for each with its offset in the run. Version
// strings ("1.2.3.4-rc1", "v10.0.0.1"), loopback, unspecified and
// broadcast addresses, and the hosts of e-mail addresses are left out.
func extractEndpoints(run []byte, emit func(ep string, at int)) {
	// URLs first; their hosts are not reported again on their own.
	var inURL [][2]int
	for rest, base := run, 0; ; {
		i := bytes.Index(rest, []byte("://"))
		if i < 0 {
			break
		}
		s := i
		for s > 0 && isSchemeChar(rest[s-1]) {
			s--
		}
		e := i + 3
		for e < len(rest) && isURLChar(rest[e]) {
			e++
		}
		scheme := strings.ToLower(string(rest[s:i]))
		if urlSchemes[scheme] && e > i+3 {
			u := strings.TrimRight(string(rest[s:e]), ".,;:)]}'\"")
			if len(u) > len(scheme)+3 && len(u) <= 2048 && !strings.Contains(u, "%s") && !strings.Contains(u, "%d") {
				emit(u, base+s)
				inURL = append(inURL, [2]int{base + s, base + e})
			}
		}
		rest, base = rest[e:], base+e
	}
	covered := func(at int) bool {
		for _, r := range inURL {
			if at >= r[0] && at < r[1] {
				return true
			}
		}
		return false
	}
	// Tokens of host and address characters.
	for i := 0; i < len(run); {
		if !isHostChar(run[i]) && run[i] != ':' {
			i++
			continue
		}
		j := i
		for j < len(run) && (isHostChar(run[j]) || run[j] == ':') {
			j++
		}
		if !covered(i) {
			hostToken(run, i, j, emit)
		}
		i = j
	}
}

// hostToken reports the endpoint, if any, in run[i:j].
func hostToken(run []byte, i, j int, emit func(string, int)) {
	tok := run[i:j]
	if bytes.Count(tok, []byte(":")) >= 2 {
		if ip := ipv6(tok); ip != "" {
			emit(ip, i)
		}
		return
	}
	// host:port or a.b.c.d:port: look at the host part.
	if k := bytes.IndexByte(tok, ':'); k >= 0 {
		tok = tok[:k]
	}
	tok = bytes.TrimRight(bytes.TrimLeft(tok, ".-"), ".-")
	if bytes.IndexByte(tok, '.') < 0 || len(tok) < 4 || len(tok) > 253 {
		return
	}
	prev := byte(' ')
	if i > 0 {
		prev = run[i-1]
	}
	next := byte(' ')
	if i+len(tok) < len(run) {
		next = run[i+len(tok)]
	}
	if isDigit(tok[0]) {
		if ip := ipv4(tok, prev, next); ip != "" {
			emit(ip, i)
		}
		return
	}
	if prev == '@' {
		return // an e-mail address
	}
	if h := hostname(tok); h != "" {
		emit(h, i)
	}
}

func ipv4(tok []byte, prev, next byte) string {
	// A dotted quad that continues ("1.2.3.4.5"), follows a letter or a "v"
	// ("v1.2.3.4", "libfoo1.2.3.4") or runs into a suffix ("1.2.3.4-rc1",
	// "1.2.3.4~deb12") is a version, not an address.
	if isLetter(prev) || prev == '.' || prev == '-' || prev == '_' || next == '-' || next == '~' || next == '+' || next == '_' || isLetter(next) {
		return ""
	}
	if bytes.Count(tok, []byte(".")) != 3 {
		return ""
	}
	addr, err := netip.ParseAddr(string(tok))
	if err != nil || !addr.Is4() {
		return ""
	}
	a := addr.As4()
	switch {
	case a[0] == 0, a[0] == 127, a[0] == 255, a[0] >= 224, addr.String() != string(tok):
		// unspecified, loopback, broadcast and masks, multicast; and
		// "010.1.1.1"-style forms that no resolver writes
		return ""
	}
	return addr.String()
}

func ipv6(tok []byte) string {
	tok = bytes.Trim(tok, ":.")
	s := string(tok)
	if len(s) < 6 || (!strings.Contains(s, "::") && strings.Count(s, ":") != 7) {
		return ""
	}
	for _, c := range tok {
		if !(isHexDigit(c) || c == ':' || c == '.') {
			return ""
		}
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is6() || addr.Is4In6() || addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast() {
		return ""
	}
	return addr.String()
}

// hostname returns tok, as written, if it reads as a host name: labels of
// letters, digits and hyphens under a known top-level domain, with at least
// one label of three characters or more (two-letter fragments such as
// "t.hk" turn up by chance in binaries).
func hostname(tok []byte) string {
	labels := strings.Split(strings.ToLower(string(tok)), ".")
	if len(labels) < 2 || !tlds[labels[len(labels)-1]] {
		return ""
	}
	letters, long := false, false
	for _, l := range labels[:len(labels)-1] {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return ""
		}
		for _, c := range []byte(l) {
			letters = letters || isLetter(c)
		}
		long = long || len(l) >= 3
	}
	if !letters || !long {
		return ""
	}
	return string(tok)
}

func isDigit(c byte) bool    { return c >= '0' && c <= '9' }
func isLetter(c byte) bool   { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isHexDigit(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isHostChar(c byte) bool { return isDigit(c) || isLetter(c) || c == '.' || c == '-' }
func isSchemeChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '+' || c == '-' || c == '.'
}
func isURLChar(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`' && c != '\\' && c != '{' && c != '}' && c != '|' && c != '^'
}
