package analyze

import (
	"reflect"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestSecurityControlLoss(t *testing.T) {
	const deny = "# /etc/hosts.deny\nALL: ALL\nsshd: 0.0.0.0/0\n"
	const fw = "config defaults\n\toption input 'REJECT'\n\toption forward 'REJECT'\n\nconfig rule\n\toption name 'Block-telnet'\n\toption dest_port '23'\n\toption target 'DROP'\n"
	mod := func(p, old, cur string) *pipeline.Change {
		return changed(fileEntry(p, old, 0o644), fileEntry(p, cur, 0o644), "content")
	}
	tests := []struct {
		name    string
		ch      *pipeline.Change
		id      string
		sev     pipeline.Severity
		msg     string
		removed []string // evidence removed_lines, nil for none
	}{
		{
			name: "firewall config removed",
			ch:   removed(fileEntry("/etc/config/firewall", fw, 0o644)),
			id:   pipeline.IDFileRemoved, sev: pipeline.SeverityHigh, msg: "security control removed: firewall rules",
		},
		{
			name: "nftables drop-in removed",
			ch:   removed(fileEntry("/etc/nftables.d/10-block.nft", "drop\n", 0o644)),
			id:   pipeline.IDFileRemoved, sev: pipeline.SeverityHigh, msg: "security control removed: firewall rules",
		},
		{
			name: "securetty removed",
			ch:   removed(fileEntry("/etc/securetty", "console\n", 0o644)),
			id:   pipeline.IDFileRemoved, sev: pipeline.SeverityHigh, msg: "security control removed: login restrictions",
		},
		{
			name: "sudoers.d file removed",
			ch:   removed(fileEntry("/etc/sudoers.d/lockdown", "Defaults requiretty\n", 0o440)),
			id:   pipeline.IDFileRemoved, sev: pipeline.SeverityHigh, msg: "security control removed: sudo rules",
		},
		{
			name: "hosts.deny loses lines",
			ch:   mod("/etc/hosts.deny", deny, "# /etc/hosts.deny\n# ALL: ALL\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityHigh, msg: "access list lose 2 lines: ALL: ALL",
			removed: []string{"ALL: ALL", "sshd: 0.0.0.0/0"},
		},
		{
			name: "firewall rule dropped",
			ch:   mod("/etc/config/firewall", fw, "config defaults\n\toption input 'ACCEPT'\n\toption forward 'REJECT'\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityHigh, msg: "firewall rules lose 5 lines: option input 'REJECT'",
			removed: []string{"option input 'REJECT'", "config rule", "option name 'Block-telnet'", "option dest_port '23'", "option target 'DROP'"},
		},
		{
			name: "sshd_config loses a line",
			ch:   mod("/etc/ssh/sshd_config", "PermitRootLogin no\nPort 22\n", "Port 22\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityHigh, msg: "SSH server settings lose 1 line: PermitRootLogin no",
			removed: []string{"PermitRootLogin no"},
		},
		{
			name: "PAM file loses a line",
			ch:   mod("/etc/pam.d/login", "auth requisite pam_nologin.so\nauth include common-auth\n", "auth include common-auth\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityHigh, msg: "login restrictions lose 1 line",
			removed: []string{"auth requisite pam_nologin.so"},
		},
		// Not high.
		{
			name: "hosts.deny only gains lines",
			ch:   mod("/etc/hosts.deny", deny, deny+"telnetd: ALL\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityInfo, msg: "content changed",
		},
		{
			name: "hosts.deny reformatted and commented",
			ch:   mod("/etc/hosts.deny", deny, "# deny everything\n\n  ALL:   ALL  \nsshd:\t0.0.0.0/0\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityInfo, msg: "content changed",
		},
		{
			name: "hosts.deny added",
			ch:   added(fileEntry("/etc/hosts.deny", deny, 0o644)),
			id:   pipeline.IDFileAdded, sev: pipeline.SeverityInfo, msg: "added",
		},
		{
			name: "ordinary config loses lines",
			ch:   mod("/etc/config/system", "option hostname 'OpenWrt'\noption timezone 'UTC'\n", "option hostname 'OpenWrt'\n"),
			id:   pipeline.IDFileModified, sev: pipeline.SeverityInfo, msg: "content changed",
		},
		{
			name: "ordinary config removed",
			ch:   removed(fileEntry("/etc/config/system", "option hostname 'OpenWrt'\n", 0o644)),
			id:   pipeline.IDFileRemoved, sev: pipeline.SeverityInfo, msg: "removed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := only(t, analyzeWith(t, Files{}, input(tt.ch)), tt.id, tt.sev, tt.ch)
			contains(t, "message", f.Message, tt.msg)
			rl, has := f.Evidence["removed_lines"]
			if tt.removed == nil && has || tt.removed != nil && !reflect.DeepEqual(rl, tt.removed) {
				t.Errorf("removed_lines = %#v, want %#v", rl, tt.removed)
			}
		})
	}
}

func TestControlLoss(t *testing.T) {
	ch := changed(fileEntry("/etc/hosts.allow", "sshd: 10.0.0.0/8\n\n# x\nALL: LOCAL\n", 0o644), fileEntry("/etc/hosts.allow", "ALL: LOCAL\n", 0o644), "content")
	got, err := controlLoss(t.Context(), ch)
	if err != nil || !reflect.DeepEqual(got, []string{"sshd: 10.0.0.0/8"}) {
		t.Errorf("controlLoss = %q, %v; want [sshd: 10.0.0.0/8]", got, err)
	}
	got, err = controlLoss(t.Context(), removed(fileEntry("/etc/iptables/rules.v4", "-A INPUT -j DROP\n", 0o644)))
	if err != nil || !reflect.DeepEqual(got, []string{"the whole file"}) {
		t.Errorf("controlLoss of a removal = %q, %v", got, err)
	}
	got, err = controlLoss(t.Context(), changed(fileEntry("/etc/hosts.allow", "a\n", 0o644), fileEntry("/etc/hosts.allow", "a\n", 0o600), "mode"))
	if err != nil || len(got) != 0 {
		t.Errorf("controlLoss of a mode change = %q, %v", got, err)
	}
}

func TestIsSensitive(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/etc/passwd", true},
		{"/etc/shadow", true},
		{"/etc/shadow-", true},
		{"/etc/gshadow", true},
		{"/etc/sudoers", true},
		{"/etc/sudoers.d/90-vendor", true},
		{"/etc/ssh/sshd_config", true},
		{"/etc/ssh/ssh_host_ed25519_key", true},
		{"/etc/dropbear/dropbear_rsa_host_key", true},
		{"/root/.ssh/authorized_keys", true},
		{"/home/admin/.ssh/id_rsa", true},
		{"/var/lib/svc/authorized_keys", true},
		{"/opt/x/authorized_keys2", true},
		{"/etc/ssl/private/server.key", true},
		{"/etc/ssl/certs/ca-certificates.crt", true},
		{"/usr/share/vendor/device.key", true},
		{"/etc/init.d/dropbear", true},
		{"/etc/rc.d/S50dropbear", true},
		{"/etc/rc3.d/S20ssh", true},
		{"/etc/inittab", true},
		{"/etc/rc.local", true},
		{"/etc/crontab", true},
		{"/etc/cron.d/sync", true},
		{"/etc/cron.daily/logrotate", true},
		{"/etc/crontabs/root", true},
		{"/var/spool/cron/crontabs/root", true},
		{"/etc/systemd/system/x.service", true},
		{"/lib/systemd/system/ssh.service", true},
		{"/usr/lib/systemd/system/getty@.service", true},
		{"/etc/pam.d/common-auth", true},
		{"/etc/security/access.conf", true},
		{"/etc/login.defs", true},
		{"/etc/securetty", true},
		{"/etc/xinetd.d/telnet", true},
		{"/etc/inetd.conf", true},
		{"/etc/ld.so.preload", true},
		{"/etc/ld.so.conf.d/vendor.conf", true},
		{"/etc/config/firewall", true},
		{"/etc/firewall.user", true},
		{"/etc/iptables/rules.v4", true},
		{"/etc/nftables.conf", true},
		{"/etc/hosts.allow", true},
		{"/etc/hosts.deny", true},
		// Not sensitive.
		{"/etc/hosts", false},
		{"/etc/config/system", false},
		{"/etc/banner", false},
		{"/usr/bin/ssh", false},
		{"/usr/share/doc/openssh/README", false},
		{"/home/admin/.profile", false},
		{"/etc/ssl/openssl.cnf", false},
		{"/etc/os-release", false},
		{"/www/index.html", false},
		{"/etc/passwd.bak", false},
		{"/etc/keys.txt", false},
	}
	for _, tt := range tests {
		if got := isSensitive(tt.path); got != tt.want {
			t.Errorf("isSensitive(%q) = %t, want %t", tt.path, got, tt.want)
		}
	}
}
