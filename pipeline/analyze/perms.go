package analyze

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/fwvet/fwvet/pipeline"
)

// sensitive are the files whose mode or owner must not drift: credentials,
// SSH and TLS material, init and cron files, sudoers, PAM. A mode or owner
// change on one of them ranks high.
var sensitive = []string{
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow", "/etc/passwd-", "/etc/shadow-",
	"/etc/sudoers", "/etc/sudoers.d/**", "/etc/doas.conf",
	"/etc/ssh/**", "/etc/dropbear/**", "/root/.ssh/**", "/home/*/.ssh/**", "**/authorized_keys", "**/authorized_keys2",
	"/etc/ssl/private/**", "/etc/ssl/certs/**", "/etc/pki/**", "**/*.key",
	"/etc/init.d/**", "/etc/rc.d/**", "/etc/rc*.d/**", "/etc/inittab", "/etc/rc.local", "/etc/rc.common",
	"/etc/crontab", "/etc/cron.*/**", "/etc/crontabs/**", "/var/spool/cron/**",
	"/etc/systemd/**", "/lib/systemd/**", "/usr/lib/systemd/**",
	"/etc/pam.d/**", "/etc/security/**", "/etc/login.defs", "/etc/securetty",
	"/etc/xinetd.conf", "/etc/xinetd.d/**", "/etc/inetd.conf",
	"/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d/**",
	"/etc/config/firewall", "/etc/firewall.user", "/etc/iptables/**", "/etc/nftables.conf",
	"/etc/hosts.allow", "/etc/hosts.deny",
}

// securityControls are files whose removal, or whose lost lines, take a
// protection away: login restrictions, firewall rules, access lists.
var securityControls = []string{
	"/etc/securetty", "/etc/security/access.conf", "/etc/security/limits.conf", "/etc/login.defs",
	"/etc/hosts.allow", "/etc/hosts.deny", "/etc/pam.d/**",
	"/etc/config/firewall", "/etc/firewall.user", "/etc/iptables/**", "/etc/nftables.conf", "/etc/nftables.d/**",
	"/etc/sysconfig/iptables", "/etc/sysconfig/ip6tables", "/etc/ufw/**",
	"/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/**", "/etc/config/dropbear", "/etc/default/dropbear",
	"/etc/sudoers", "/etc/sudoers.d/**",
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := doublestar.Match(pat, p); ok {
			return true
		}
	}
	return false
}

func isSensitive(p string) bool { return matchAny(sensitive, p) }

// maxControlFile bounds how much of a security control file is compared.
const maxControlFile = 1 << 20

// controlLoss reports what a change takes away from a security control:
// the whole file, or the lines that are gone. Empty when nothing is lost.
func controlLoss(ctx context.Context, ch *pipeline.Change) ([]string, error) {
	if !matchAny(securityControls, ch.Path) {
		return nil, nil
	}
	switch ch.Kind {
	case pipeline.ChangeRemoved:
		return []string{"the whole file"}, nil
	case pipeline.ChangeModified:
		old, cur, err := readVersions(ctx, ch, maxControlFile)
		if err != nil {
			return nil, err
		}
		return removedLines(old, cur), nil
	}
	return nil, nil
}

// removedLines lists the meaningful lines of old that cur no longer has,
// ignoring blank lines and comments.
func removedLines(old, cur []byte) []string {
	have := map[string]bool{}
	for _, l := range meaningfulLines(cur) {
		have[l] = true
	}
	var out []string
	for _, l := range meaningfulLines(old) {
		if !have[l] {
			out = append(out, l)
		}
	}
	return out
}

// addedLines lists the meaningful lines of cur that old did not have.
func addedLines(old, cur []byte) []string { return removedLines(cur, old) }

// meaningfulLines are a config's non-blank, non-comment lines, trimmed and
// with runs of blanks made one.
func meaningfulLines(b []byte) []string {
	var out []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		s := strings.Join(strings.Fields(string(l)), " ")
		if s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ";") {
			continue
		}
		out = append(out, s)
	}
	return out
}

// describeControl says what kind of protection a path holds.
func describeControl(p string) string {
	switch {
	case strings.Contains(p, "firewall") || strings.Contains(p, "iptables") || strings.Contains(p, "nftables") || strings.Contains(p, "ufw"):
		return "firewall rules"
	case strings.HasPrefix(p, "/etc/hosts."), strings.HasSuffix(p, "access.conf"):
		return "access list"
	case strings.HasPrefix(p, "/etc/pam.d"), p == "/etc/securetty", p == "/etc/login.defs", strings.HasPrefix(p, "/etc/security"):
		return "login restrictions"
	case strings.Contains(p, "ssh") || strings.Contains(p, "dropbear"):
		return "SSH server settings"
	case strings.Contains(p, "sudoers"):
		return "sudo rules"
	}
	return fmt.Sprintf("security settings (%s)", path.Base(p))
}
