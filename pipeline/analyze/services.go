package analyze

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Services reports what starts, listens or fetches that did not before
// (service-added): new SysV init scripts and rc*.d links, inittab and
// rc.local lines, systemd units and the links that enable them, OpenWrt
// procd scripts, crontab entries, inetd and xinetd services; and, in any
// script, a new line that opens a listener (telnetd, nc -l, dropbear -p,
// busybox applets) or fetches periodically (wget, curl, tftp).
type Services struct{}

var _ pipeline.Analyzer = Services{}

// Name implements pipeline.Analyzer.
func (Services) Name() string { return "services" }

// maxServiceFile bounds how much of a service definition is read.
const maxServiceFile = 1 << 20

// serviceKinds map where a file lives to what it starts.
var serviceKinds = []struct {
	kind     string
	patterns []string
}{
	{"init script", []string{"/etc/init.d/*", "/etc/rc.d/init.d/*", "/etc/uci-defaults/*"}},
	{"rc.local", []string{"/etc/rc.local", "/etc/rc.d/rc.local"}},
	{"rc link", []string{"/etc/rc*.d/*", "/etc/rc.d/*"}},
	{"inittab", []string{"/etc/inittab"}},
	{"systemd unit", []string{"/etc/systemd/system/**", "/lib/systemd/system/**", "/usr/lib/systemd/system/**", "/etc/systemd/user/**"}},
	{"crontab", []string{"/etc/crontab", "/etc/cron.d/**", "/etc/cron.hourly/**", "/etc/cron.daily/**", "/etc/cron.weekly/**",
		"/etc/cron.monthly/**", "/var/spool/cron/**", "/etc/crontabs/**"}},
	{"inetd service", []string{"/etc/inetd.conf", "/etc/xinetd.conf", "/etc/xinetd.d/**"}},
}

func serviceKind(p string) string {
	for _, k := range serviceKinds {
		if matchAny(k.patterns, p) {
			return k.kind
		}
	}
	return ""
}

// lineKinds classify a new line, most telling first.
var lineKinds = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"listener", regexp.MustCompile(`\b(telnetd|utelnetd)\b|\b(nc|netcat|ncat)\b[^|;&]*\s-[a-zA-Z]*[le]|\bsocat\b|\bdropbear\b[^|;&]*\s-p|` +
		`\bbusybox\s+(telnetd|httpd|nc|ftpd|tftpd|tcpsvd|udpsvd|inetd)\b|\b(tcpsvd|udpsvd|inetd|xinetd|sshd|uhttpd|lighttpd|mini_httpd|thttpd|ftpd|tftpd)\b|` +
		`^Listen(Stream|Datagram|SequentialPacket)=|^\s*(port|server)\s*=|/dev/(tcp|udp)/`)},
	{"fetch", regexp.MustCompile(`\b(wget|curl|tftp|ftpget|uclient-fetch|scp|rsync)\b`)},
	{"daemon", regexp.MustCompile(`^ExecStart(Pre|Post)?=|procd_set_param\s+command|:respawn:|:once:|:sysinit:|\bstart-stop-daemon\b|&\s*$`)},
}

func classifyLine(l string) string {
	for _, k := range lineKinds {
		if k.re.MatchString(l) {
			return k.kind
		}
	}
	return ""
}

// Analyze implements pipeline.Analyzer.
func (Services) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		f, err := serviceChange(ctx, in, ch)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

func serviceChange(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change) (*pipeline.Finding, error) {
	kind := serviceKind(ch.Path)
	e := ch.New
	if e == nil {
		return nil, nil
	}
	// A start link: an rc*.d link or a systemd .wants/.requires link, new
	// or pointed somewhere else (a metadata change of the link).
	if e.Type == pipeline.TypeSymlink && (ch.Kind == pipeline.ChangeAdded || ch.HasField("link_target")) {
		dir := path.Base(path.Dir(ch.Path))
		if kind == "rc link" || strings.HasSuffix(dir, ".wants") || strings.HasSuffix(dir, ".requires") {
			msg := fmt.Sprintf("enabled at boot: %s → %s", ch.Path, e.LinkTarget)
			return ptr(finding(pipeline.IDServiceAdded, ch, msg, map[string]any{"kind": "start link", "link_target": e.LinkTarget})), nil
		}
		return nil, nil
	}
	if e.Type != pipeline.TypeFile || ch.Kind == pipeline.ChangeMetadata {
		return nil, nil
	}
	s := in.Scans[ch.Key]
	script := s != nil && s.New != nil && s.New.Magic == "" && isScript(ctx, e)
	if kind == "" && !script {
		return nil, nil
	}
	cur, err := readText(ctx, e, maxServiceFile)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(cur, 0) >= 0 {
		return nil, nil // binary, not a service definition
	}
	var old []byte
	if ch.Kind == pipeline.ChangeModified {
		if old, err = readText(ctx, ch.Old, maxServiceFile); err != nil {
			return nil, err
		}
	}
	lines := addedLines(old, cur)
	var worst string
	var shown []string
	for _, l := range lines {
		k := classifyLine(l)
		if k != "" && (worst == "" || rank(k) < rank(worst)) {
			worst = k
		}
		if k != "" || kind != "" {
			shown = append(shown, l)
		}
	}
	if len(shown) == 0 || (kind == "" && worst != "listener" && worst != "fetch") {
		// Outside service locations only a listener or a fetch counts.
		return nil, nil
	}
	if kind == "" {
		kind = "script"
	}
	ev := map[string]any{"kind": kind, "new_lines": capList(shown, 20)}
	if worst != "" {
		ev["line_kind"] = worst
	}
	// A line that replaces one of the same command is a changed listener,
	// not a new one (a port or flag changed).
	before := map[string]string{}
	for _, l := range removedLines(old, cur) {
		if classifyLine(l) == "listener" {
			before[command(l)] = l
		}
	}
	var msg string
	switch {
	case worst == "listener" && before[command(firstOf(shown, "listener"))] != "":
		l := firstOf(shown, "listener")
		ev["replaces"] = before[command(l)]
		msg = fmt.Sprintf("listener changed in %s: %s (was: %s)", kind, l, before[command(l)])
	case worst == "listener":
		msg = fmt.Sprintf("new listener in %s: %s", kind, firstOf(shown, "listener"))
	case worst == "fetch" && kind == "crontab":
		msg = fmt.Sprintf("new periodic fetch: %s", firstOf(shown, "fetch"))
	case worst == "fetch":
		msg = fmt.Sprintf("new fetch in %s: %s", kind, firstOf(shown, "fetch"))
	case ch.Kind == pipeline.ChangeAdded:
		msg = fmt.Sprintf("new %s", kind)
		if worst == "daemon" {
			msg += ": " + firstOf(shown, "daemon")
		}
	default:
		msg = fmt.Sprintf("%s gains %d line%s: %s", kind, len(shown), plural(len(shown)), shown[0])
	}
	return ptr(finding(pipeline.IDServiceAdded, ch, msg, ev)), nil
}

// command is the program a line runs: the base name of its first word,
// and for busybox the applet too.
func command(l string) string {
	f := strings.Fields(l)
	if len(f) == 0 {
		return ""
	}
	c := path.Base(f[0])
	if c == "busybox" && len(f) > 1 {
		c += " " + f[1]
	}
	return c
}

func rank(kind string) int {
	for i, k := range lineKinds {
		if k.kind == kind {
			return i
		}
	}
	return len(lineKinds)
}

func firstOf(lines []string, kind string) string {
	for _, l := range lines {
		if classifyLine(l) == kind {
			return l
		}
	}
	return lines[0]
}

// isScript reports a file that starts with "#!".
func isScript(ctx context.Context, e *pipeline.Entry) bool {
	b, err := readText(ctx, e, 2)
	return err == nil && string(b) == "#!"
}

func ptr(f pipeline.Finding) *pipeline.Finding { return &f }
