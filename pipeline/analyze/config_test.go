package analyze

import (
	"context"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

const addedFile = "\x00added"

type configCase struct {
	name, path string
	// old is the baseline's version, addedFile when there is none.
	old, cur string
	// want are the settings of the findings, in order; none for a control.
	want []string
}

var sshdBase = `# hardened
Port 22
ListenAddress 127.0.0.1
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
AuthenticationMethods publickey,password
Subsystem sftp /usr/lib/openssh/sftp-server
`

var dropbearUCI = `config dropbear
	option PasswordAuth 'off'
	option RootPasswordAuth 'off'
	option Port '22'
	option Interface 'lan'
`

var firewallBase = `config defaults
	option input 'REJECT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'

config zone
	option name 'wan'
	list network 'wan'
	option input 'REJECT'
	option forward 'REJECT'

config rule
	option name 'Allow-SSH-LAN'
	option src 'lan'
	option dest_port '22'
	option target 'ACCEPT'

config rule
	option name 'Block-WAN-Management'
	option src 'wan'
	option dest_port '22 80 443'
	option target 'REJECT'
`

var iptBase = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -s 192.168.1.0/24 -p tcp --dport 22 -j ACCEPT
-A INPUT -p tcp --dport 23 -j DROP
COMMIT
`

var nftBase = `#!/usr/sbin/nft -f
flush ruleset
table inet filter {
	set mgmt {
		type ipv4_addr
		elements = { 192.168.1.10, 192.168.1.11 }
	}
	chain input {
		type filter hook input priority 0; policy drop;
		iif lo accept
		ct state established,related accept
		ip saddr 192.168.1.0/24 tcp dport { 22, 80 } accept
		tcp dport 23 drop
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
	}
}
`

var configCases = []configCase{
	// OpenSSH
	{"sshd password on", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "PasswordAuthentication no", "PasswordAuthentication yes", 1), []string{"PasswordAuthentication"}},
	{"sshd root yes", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "PermitRootLogin prohibit-password", "PermitRootLogin yes", 1), []string{"PermitRootLogin"}},
	{"sshd empty passwords, = syntax", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "PermitEmptyPasswords no", "permitemptypasswords=yes", 1), []string{"PermitEmptyPasswords"}},
	{"sshd auth methods", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "AuthenticationMethods publickey,password", "AuthenticationMethods publickey,password password", 1), []string{"AuthenticationMethods"}},
	{"sshd listen all", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "ListenAddress 127.0.0.1", "ListenAddress 0.0.0.0", 1), []string{"ListenAddress"}},
	{"sshd listen removed", "/etc/ssh/sshd_config", sshdBase, strings.Replace(sshdBase, "ListenAddress 127.0.0.1\n", "", 1), []string{"ListenAddress"}},
	{"sshd first value wins: later yes ignored", "/etc/ssh/sshd_config", sshdBase, sshdBase + "PasswordAuthentication yes\n", nil},
	{"sshd earlier yes wins", "/etc/ssh/sshd_config", sshdBase, "PasswordAuthentication yes\n" + sshdBase, []string{"PasswordAuthentication"}},
	{"sshd Match block only", "/etc/ssh/sshd_config", sshdBase, sshdBase + "Match Address 192.168.1.0/24\n\tPasswordAuthentication yes\n\tPermitRootLogin yes\n", nil},
	{"sshd Match all applies to all", "/etc/ssh/sshd_config", sshdBase, sshdBase + "Match all\n\tPasswordAuthentication yes\n", []string{"PasswordAuthentication"}},
	{"sshd tightening", "/etc/ssh/sshd_config", strings.Replace(sshdBase, "PasswordAuthentication no", "PasswordAuthentication yes", 1), sshdBase, nil},
	{"sshd reordered, comments", "/etc/ssh/sshd_config", sshdBase, "# reordered\nSubsystem sftp /usr/lib/openssh/sftp-server\nPermitEmptyPasswords   no\nAuthenticationMethods publickey,password\nPasswordAuthentication no # keys only\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nListenAddress 127.0.0.1\nPort 22\n", nil},
	{"sshd new file, root yes", "/etc/ssh/sshd_config.d/10-diag.conf", addedFile, "PermitRootLogin yes\n", []string{"PermitRootLogin"}},
	{"sshd new file, defaults", "/etc/ssh/sshd_config", addedFile, "PasswordAuthentication yes\nPermitRootLogin prohibit-password\n", nil},
	// dropbear command lines
	{"dropbear -s removed", "/etc/init.d/rcS", "#!/bin/sh\nmount -t proc proc /proc\n/usr/sbin/dropbear -s -g -p 22\n", "#!/bin/sh\nmount -t proc proc /proc\n/usr/sbin/dropbear -g -p 22\n", []string{"-s (disable password logins)"}},
	{"dropbear combined flags kept", "/etc/init.d/dropbear", "#!/bin/sh\ndropbear -s -g -w -p 192.168.1.1:22\n", "#!/bin/sh\n# moved flags\ndropbear -sgw -p 192.168.1.1:22 &\n", nil},
	{"dropbear bound everywhere, -B", "/etc/init.d/dropbear", "#!/bin/sh\ndropbear -s -p 192.168.1.1:22\n", "#!/bin/sh\ndropbear -s -B -p 0.0.0.0:22\n", []string{"-B (allow blank password logins)", "-p (listening address)"}},
	{"dropbear defaults file", "/etc/default/dropbear", "DROPBEAR_EXTRA_ARGS=\"-s -w\"\n", "DROPBEAR_EXTRA_ARGS=\"-w\"\n", []string{"-s (disable password logins)"}},
	{"dropbear variable resolved", "/etc/init.d/dropbear", "#!/bin/sh\nDROPBEAR_EXTRA_ARGS=\"-s -g\"\nstart-stop-daemon -S -x /usr/sbin/dropbear -- $DROPBEAR_EXTRA_ARGS\n", "#!/bin/sh\nDROPBEAR_EXTRA_ARGS=\"-g\"\nstart-stop-daemon -S -x /usr/sbin/dropbear -- $DROPBEAR_EXTRA_ARGS\n", []string{"-s (disable password logins)"}},
	{"dropbear killall is no command line", "/etc/init.d/dropbear", "#!/bin/sh\ndropbear -s\n", "#!/bin/sh\ndropbear -s\nkillall dropbear\n", nil},
	// OpenWrt dropbear
	{"uci dropbear password on", "/etc/config/dropbear", dropbearUCI, strings.Replace(dropbearUCI, "PasswordAuth 'off'", "PasswordAuth 'on'", 1), []string{"option PasswordAuth"}},
	{"uci dropbear root password, interface", "/etc/config/dropbear", dropbearUCI, "config dropbear\n\toption PasswordAuth 'off'\n\toption Port '22'\n", []string{"option RootPasswordAuth", "option Interface"}},
	{"uci dropbear gateway ports", "/etc/config/dropbear", dropbearUCI, dropbearUCI + "\toption GatewayPorts 'on'\n", []string{"option GatewayPorts"}},
	{"uci dropbear reordered", "/etc/config/dropbear", dropbearUCI, "config dropbear\n\toption Interface \"lan\"\n\toption Port 22\n\toption RootPasswordAuth off\n\toption PasswordAuth 0\n", nil},
	// inetd, xinetd, inittab, telnetd
	{"inetd telnet enabled", "/etc/inetd.conf", "#telnet stream tcp nowait root /usr/sbin/telnetd telnetd\nftp stream tcp nowait root /usr/sbin/ftpd ftpd\n", "telnet stream tcp nowait root /usr/sbin/telnetd telnetd\nftp stream tcp nowait root /usr/sbin/ftpd ftpd\n", []string{"telnet service"}},
	{"inetd tftp by daemon", "/etc/inetd.conf", "", "69 dgram udp wait root /usr/sbin/in.tftpd in.tftpd /srv\n", []string{"tftp service"}},
	{"inetd comment only", "/etc/inetd.conf", "telnet stream tcp nowait root /usr/sbin/telnetd telnetd\n", "# telnet for the lab\ntelnet  stream tcp nowait root /usr/sbin/telnetd telnetd\n", nil},
	{"xinetd disable no", "/etc/xinetd.d/telnet", "service telnet\n{\n\tdisable = yes\n\tserver = /usr/sbin/in.telnetd\n}\n", "service telnet\n{\n\tdisable = no\n\tserver = /usr/sbin/in.telnetd\n}\n", []string{"telnet service (disable)"}},
	{"xinetd other service", "/etc/xinetd.d/echo", addedFile, "service echo\n{\n\tdisable = no\n\ttype = INTERNAL\n}\n", nil},
	{"inittab serial shell", "/etc/inittab", "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n", "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/bin/sh\n", []string{"entry for ttyS0"}},
	{"inittab telnetd", "/etc/inittab", "::sysinit:/etc/init.d/rcS\n", "::sysinit:/etc/init.d/rcS\n::respawn:/usr/sbin/telnetd -F -l /bin/login\n", []string{"telnetd entry"}},
	{"inittab askfirst kept", "/etc/inittab", "::sysinit:/etc/init.d/rcS\n::askfirst:/bin/sh\n", "::askfirst:-/bin/sh\n::sysinit:/etc/init.d/rcS\n::shutdown:/bin/umount -a -r\n", nil},
	{"init script starts telnetd", "/etc/init.d/S90diag", addedFile, "#!/bin/sh\n# remote diagnostics\ntelnetd -l /bin/sh -p 2323 &\n", []string{"telnetd"}},
	{"init script telnetd gets shell", "/etc/init.d/S50telnet", "#!/bin/sh\ntelnetd -l /bin/login\n", "#!/bin/sh\ntelnetd -l/bin/sh\n", []string{"telnetd -l"}},
	{"init script stops telnetd", "/etc/init.d/S50telnet", "#!/bin/sh\n", "#!/bin/sh\nkillall telnetd\n[ -x /usr/sbin/telnetd ] || exit 0\n", nil},
	// busybox httpd
	{"httpd allow all", "/etc/httpd.conf", "A:192.168.1.\nD:*\n/cgi-bin:admin:$1$abc$defghijk\n", "A:*\n/cgi-bin:admin:$1$abc$defghijk\n", []string{"A/D rules"}},
	{"httpd wider allow", "/etc/httpd.conf", "A:192.168.1.0/24\nD:*\n", "A:192.168.1.0/24\nA:10.\nD:*\n", []string{"A: rule"}},
	{"httpd narrower allow", "/etc/httpd.conf", "A:192.168.\nD:*\n", "D:*\nA:192.168.1.0/255.255.255.0\n", nil},
	{"httpd auth removed", "/etc/httpd.conf", "A:*\n/cgi-bin:admin:$1$abc$defghijk\n/adm:root:$1$x$y\n", "A:*\n/adm:root:$1$x$y\n", []string{"auth for /cgi-bin"}},
	{"httpd auth moved up", "/etc/httpd.conf", "/cgi-bin/admin:admin:secret1\n", "/cgi-bin:admin:secret2\n", nil},
	{"httpd empty password", "/etc/httpd.conf", "/cgi-bin:admin:secret1\n", "/cgi-bin:admin:\n", []string{"auth for /cgi-bin"}},
	{"apache httpd.conf", "/etc/apache2/httpd.conf", "Listen 127.0.0.1:80\n", "Listen 80\n", nil},
	// iptables
	{"iptables accept from anywhere", "/etc/iptables/rules.v4", iptBase, strings.Replace(iptBase, "COMMIT", "-A INPUT -p tcp --dport 2323 -j ACCEPT\nCOMMIT", 1), []string{"rule in ip INPUT"}},
	{"iptables policy accept", "/etc/iptables/rules.v4", iptBase, strings.Replace(iptBase, ":INPUT DROP", ":INPUT ACCEPT", 1), []string{"policy of ip INPUT"}},
	{"iptables drop removed", "/etc/iptables/rules.v4", iptBase, strings.Replace(iptBase, "-A INPUT -p tcp --dport 23 -j DROP\n", "", 1), []string{"rule in ip INPUT"}},
	{"iptables established, lan, lo, reordered", "/etc/iptables/rules.v4", iptBase, "# saved\n*filter\n:INPUT DROP [12:345]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [9:99]\n-A INPUT -p tcp --dport 23 -j DROP\n-A INPUT -s 192.168.1.0/24 -p tcp --dport 22 -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -i br-lan -p tcp --dport 80 -j ACCEPT\n-A INPUT -p icmp -j ACCEPT\nCOMMIT\n", nil},
	{"ip6tables save file", "/etc/iptables/rules.v6", strings.Replace(iptBase, "192.168.1.0/24", "fd00::/64", 1), strings.Replace(strings.Replace(iptBase, "192.168.1.0/24", "fd00::/64", 1), ":INPUT DROP", ":INPUT ACCEPT", 1), []string{"policy of ip6 INPUT"}},
	{"iptables command on wan", "/etc/firewall.user", "# user rules\n", "# user rules\niptables -I INPUT 1 -i eth0.2-wan -p tcp --dport 8080 -j ACCEPT\n", []string{"rule in ip INPUT"}},
	{"iptables zone_wan_input", "/etc/firewall.user", "", "iptables -A zone_wan_input -p tcp --dport 7547 -j ACCEPT\niptables -t nat -A PREROUTING -p tcp --dport 80 -j ACCEPT\n", []string{"rule in ip zone_wan_input"}},
	// nftables
	{"nft accept from anywhere", "/etc/nftables.conf", nftBase, strings.Replace(nftBase, "\t\ttcp dport 23 drop\n", "\t\ttcp dport 23 drop\n\t\ttcp dport { 2323, 8080 } accept\n", 1), []string{"rule in inet filter input"}},
	{"nft policy accept", "/etc/nftables.conf", nftBase, strings.Replace(nftBase, "priority 0; policy drop;\n\t\tiif", "priority 0; policy accept;\n\t\tiif", 1), []string{"policy of inet filter input"}},
	{"nft drop removed", "/etc/nftables.conf", nftBase, strings.Replace(nftBase, "\t\ttcp dport 23 drop\n", "", 1), []string{"rule in inet filter input"}},
	{"nft established, reordered, comments", "/etc/nftables.conf", nftBase, strings.Replace(strings.Replace(nftBase, "\t\tct state established,related accept\n", "", 1), "\t\tiif lo accept\n", "\t\tiif lo accept # loopback\n\t\tct state { established, related } accept\n\t\tiifname \"br-lan\" tcp dport 443 accept\n", 1), nil},
	{"nft forward chain accept", "/etc/nftables.conf", nftBase, strings.Replace(nftBase, "priority 0; policy drop;\n\t}", "priority 0; policy drop;\n\t\ttcp dport 80 accept\n\t}", 1), nil},
	{"nft wan interface set", "/etc/nftables.conf", nftBase, strings.Replace(nftBase, "\t\ttcp dport 23 drop\n", "\t\ttcp dport 23 drop\n\t\tiifname { \"br-lan\", \"wan\" } udp dport 161 accept\n", 1), []string{"rule in inet filter input"}},
	{"nft add rule", "/etc/nftables.d/10-diag.nft", addedFile, "add rule inet fw4 input_wan tcp dport 9530 counter accept\n", []string{"rule in inet fw4 input_wan"}},
	// OpenWrt firewall
	{"uci firewall accept from wan", "/etc/config/firewall", firewallBase, firewallBase + "\nconfig rule\n\toption name 'Allow-Diag'\n\toption src 'wan'\n\toption proto 'tcp'\n\toption dest_port '2323'\n\toption target 'ACCEPT'\n", []string{"rule Allow-Diag"}},
	{"uci firewall wan input accept", "/etc/config/firewall", firewallBase, strings.Replace(firewallBase, "list network 'wan'\n\toption input 'REJECT'", "list network 'wan'\n\toption input 'ACCEPT'", 1), []string{"zone wan input"}},
	{"uci firewall redirect from wan", "/etc/config/firewall", firewallBase, firewallBase + "\nconfig redirect\n\toption name 'cam'\n\toption src 'wan'\n\toption src_dport '8081'\n\toption dest 'lan'\n\toption dest_ip '192.168.1.50'\n\toption dest_port '80'\n", []string{"redirect cam"}},
	{"uci firewall reject removed", "/etc/config/firewall", firewallBase, strings.Split(firewallBase, "\nconfig rule\n\toption name 'Block-WAN-Management'")[0], []string{"rule Block-WAN-Management"}},
	{"uci firewall rule from lan, renamed, stock rules", "/etc/config/firewall", firewallBase, strings.Replace(firewallBase, "Allow-SSH-LAN", "SSH-from-LAN", 1) + "\nconfig rule\n\toption name 'Allow-HTTP-LAN'\n\toption src 'lan'\n\toption dest_port '80'\n\toption target 'ACCEPT'\n\nconfig rule\n\toption name 'Allow-DHCP-Renew'\n\toption src 'wan'\n\toption proto 'udp'\n\toption dest_port '68'\n\toption target 'ACCEPT'\n\nconfig rule\n\toption name 'Allow-Ping'\n\toption src 'wan'\n\toption proto 'icmp'\n\toption icmp_type 'echo-request'\n\toption target 'ACCEPT'\n", nil},
	{"uci firewall disabled rule", "/etc/config/firewall", firewallBase, firewallBase + "\nconfig rule\n\toption name 'Allow-Diag'\n\toption src 'wan'\n\toption dest_port '2323'\n\toption target 'ACCEPT'\n\toption enabled '0'\n", nil},
	{"uci firewall new file", "/etc/config/firewall", addedFile, firewallBase + "\nconfig rule\n\toption src 'wan'\n\toption dest_port '8443'\n\toption target 'ACCEPT'\n", []string{"rule rule[2]"}},
}

func TestConfigWeakened(t *testing.T) {
	for _, c := range configCases {
		t.Run(c.name, func(t *testing.T) {
			n := fileEntry(c.path, c.cur, 0o644)
			var ch *pipeline.Change
			if c.old == addedFile {
				ch = added(n)
			} else {
				ch = changed(fileEntry(c.path, c.old, 0o644), n, "content")
			}
			fs := analyzeWith(t, Config{}, scanned(t, ch))
			if len(fs) != len(c.want) {
				t.Fatalf("%d findings, want %d (%v): %s", len(fs), len(c.want), c.want, marshal(t, fs))
			}
			for i, f := range fs {
				if f.ID != pipeline.IDConfigWeakened || f.Severity != pipeline.SeverityHigh || !f.AllowOnly || f.Path != c.path || f.Key != ch.Key {
					t.Errorf("finding %d = %s/%s allow-only %v at %s", i, f.ID, f.Severity, f.AllowOnly, f.Path)
				}
				t.Log(f.Message)
				if got := f.Evidence["setting"]; got != c.want[i] {
					t.Errorf("finding %d setting = %q, want %q: %s", i, got, c.want[i], f.Message)
				}
				for _, k := range []string{"setting", "before", "after", "family", "line"} {
					if _, ok := f.Evidence[k]; !ok {
						t.Errorf("finding %d evidence lacks %s", i, k)
					}
				}
				if !strings.Contains(f.Message, " changed from ") {
					t.Errorf("message %q", f.Message)
				}
			}
		})
	}
}

// TestConfigMessage: the message a reviewer reads, and no password in it.
func TestConfigMessage(t *testing.T) {
	old := fileEntry("/etc/ssh/sshd_config", "PasswordAuthentication no\n", 0o644)
	cur := fileEntry("/etc/ssh/sshd_config", "PasswordAuthentication yes\n", 0o644)
	ch := changed(old, cur, "content")
	f := only(t, analyzeWith(t, Config{}, scanned(t, ch)), pipeline.IDConfigWeakened, pipeline.SeverityHigh, ch)
	if want := "sshd: PasswordAuthentication changed from no to yes: password logins enabled"; f.Message != want {
		t.Errorf("message = %q, want %q", f.Message, want)
	}
	if f.Evidence["line"] != 1 || f.Evidence["family"] != "sshd" {
		t.Errorf("evidence = %v", f.Evidence)
	}
	h := changed(fileEntry("/etc/httpd.conf", "/cgi-bin:admin:s3cret-pass\n", 0o644), fileEntry("/etc/httpd.conf", "/cgi-bin:admin:\n", 0o644), "content")
	for _, f := range analyzeWith(t, Config{}, scanned(t, h)) {
		if strings.Contains(marshal(t, []pipeline.Finding{f}), "s3cret") {
			t.Errorf("finding shows the password: %s", f.Message)
		}
	}
}

// TestConfigSkips: removed files, metadata changes, binaries and other
// paths give nothing.
func TestConfigSkips(t *testing.T) {
	cfg := fileEntry("/etc/ssh/sshd_config", "PermitRootLogin yes\n", 0o644)
	bin := fileEntry("/etc/init.d/S90diag", "\x7fELF\x00telnetd -l /bin/sh\n", 0o755)
	other := fileEntry("/usr/share/doc/sshd_config", "PermitRootLogin yes\n", 0o644)
	meta := changed(fileEntry("/etc/ssh/sshd_config", "PermitRootLogin yes\n", 0o600), cfg, "mode")
	none(t, analyzeWith(t, Config{}, scanned(t, removed(cfg), added(bin), added(other), meta)))
}

func FuzzConfigParsers(f *testing.F) {
	for _, c := range configCases {
		if c.old != addedFile {
			f.Add([]byte(c.old), []byte(c.cur))
		}
	}
	f.Add([]byte("table inet t { chain c { type filter hook input priority 0; policy drop; tcp dport { 1,\n2 } accept } }"), []byte("chain {"))
	f.Add([]byte("dropbear -p"), []byte("dropbear -p [::1]:22 -p :22"))
	f.Fuzz(func(t *testing.T, old, cur []byte) { judgeAll(old, cur) })
}

// judgeAll runs every parser and judge on a pair of inputs.
func judgeAll(old, cur []byte) {
	for _, fam := range configFamilies {
		fam.run("/etc/iptables/rules.v6", old, cur)
		fam.run("/etc/config/x", nil, cur)
	}
	parsePrefix(string(cur))
	addrExposure(string(cur))
	authMethodsWeaker(string(old), string(cur))
}

// TestConfigParsersTruncated runs the fuzz target's body over every prefix
// of every case, the cut-off configs a fuzzer finds first.
func TestConfigParsersTruncated(t *testing.T) {
	for _, c := range configCases {
		for i := 0; i <= len(c.cur); i += 1 + len(c.cur)/300 {
			judgeAll([]byte(c.cur[i:]), []byte(c.cur[:i]))
		}
	}
	judgeAll([]byte("{{{{}}}}};;;\\\n\"x"), []byte("table { chain { type hook policy } add rule inet } add chain x { add table"))
}

// corpusFirewall is the baseline's /etc/config/firewall in scripts/mkcorpus:
// no zones, a rule that rejects management ports from wan.
const corpusFirewall = `config defaults
	option input 'REJECT'
	option forward 'REJECT'

config rule
	option name 'Allow-SSH-LAN'
	option src 'lan'
	option dest_port '22'
	option target 'ACCEPT'

config rule
	option name 'Block-WAN-Management'
	option src 'wan'
	option dest_port '22 80 443'
	option target 'REJECT'
`

// TestConfigCorpusShapes: the planted changes of scripts/mkcorpus that
// config-weakened must see, and the clean edits it must not.
func TestConfigCorpusShapes(t *testing.T) {
	for _, c := range []configCase{
		{"firewall-rule-removed", "/etc/config/firewall", corpusFirewall, strings.Split(corpusFirewall, "\nconfig rule\n\toption name 'Block-WAN-Management'")[0] + "\n", []string{"rule Block-WAN-Management"}},
		{"firewall-wan-accept", "/etc/config/firewall", corpusFirewall, corpusFirewall + "\nconfig rule\n\toption name 'Allow-Remote-Support'\n\toption src 'wan'\n\toption proto 'tcp'\n\toption dest_port '4433'\n\toption target 'ACCEPT'\n", []string{"rule Allow-Remote-Support"}},
		{"clean firewall edit", "/etc/config/firewall", corpusFirewall, "# Acme RT-3200 firewall, release 1.0.1\n" + strings.Replace(corpusFirewall, "Allow-SSH-LAN", "Allow-SSH-from-LAN", 1) + "\nconfig rule\n\toption name 'Allow-HTTP-LAN'\n\toption src 'lan'\n\toption dest_port '80'\n\toption target 'ACCEPT'\n", nil},
		{"dropbear-password", "/etc/init.d/rcS", "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n/usr/sbin/dropbear -s -g -p 22\n", "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n/usr/sbin/dropbear -p 22\n", []string{"-s (disable password logins)", "-g (disable root password logins)"}},
		{"inittab-serial-shell", "/etc/inittab", "::sysinit:/etc/init.d/rcS\n::askfirst:/bin/sh\n::shutdown:/bin/umount -a -r\n", "::sysinit:/etc/init.d/rcS\n::askfirst:/bin/sh\nttyS1::respawn:/bin/sh\n::shutdown:/bin/umount -a -r\n", []string{"entry for ttyS1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := changed(fileEntry(c.path, c.old, 0o644), fileEntry(c.path, c.cur, 0o644), "content")
			fs := analyzeWith(t, Config{}, scanned(t, ch))
			if len(fs) != len(c.want) {
				t.Fatalf("%d findings, want %v: %s", len(fs), c.want, marshal(t, fs))
			}
			for i, f := range fs {
				if f.Evidence["setting"] != c.want[i] {
					t.Errorf("finding %d: %s", i, f.Message)
				}
			}
		})
	}
}

// TestConfigRegistered: Default() runs the analyzer, and its findings stay
// allow-only through Run.
func TestConfigRegistered(t *testing.T) {
	ch := changed(fileEntry("/etc/ssh/sshd_config", "PermitRootLogin no\n", 0o644), fileEntry("/etc/ssh/sshd_config", "PermitRootLogin yes\n", 0o644), "content")
	fs, failures := Run(context.Background(), Default(), input(ch), quietLog())
	if len(failures) != 0 {
		t.Fatalf("failures: %v", failures)
	}
	n := 0
	for _, f := range fs {
		if f.ID == pipeline.IDConfigWeakened {
			n++
			if !f.AllowOnly {
				t.Errorf("config-weakened finding not allow-only")
			}
		}
	}
	if n != 1 {
		t.Errorf("%d config-weakened findings through Default(), want 1", n)
	}
}
