package analyze

import (
	"fmt"
	"strings"
)

// Remote shells: inetd and xinetd services, inittab entries, telnetd in
// init scripts.

// riskyServices are inetd services that log in without keys or
// encryption, or serve files without any login.
var riskyServices = map[string]string{
	"telnet": "telnet", "23": "telnet", "shell": "rsh", "514": "rsh", "login": "rlogin", "513": "rlogin",
	"exec": "rexec", "512": "rexec", "tftp": "tftp", "69": "tftp",
}

var riskyDaemons = map[string]string{
	"telnetd": "telnet", "in.telnetd": "telnet", "utelnetd": "telnet", "rshd": "rsh", "in.rshd": "rsh",
	"rlogind": "rlogin", "in.rlogind": "rlogin", "rexecd": "rexec", "in.rexecd": "rexec", "tftpd": "tftp", "in.tftpd": "tftp",
}

// riskyService names the risky protocol an inetd line or xinetd service
// offers, "" for none.
func riskyService(name string, server []string) string {
	if r := riskyServices[strings.ToLower(name)]; r != "" {
		return r
	}
	for _, s := range server {
		if r := riskyDaemons[cmdName(s)]; r != "" {
			return r
		}
	}
	return ""
}

// inetdServices are the risky services an inetd.conf enables, by name.
func inetdServices(b []byte) map[string]configLine {
	out := map[string]configLine{}
	for _, l := range configLines(b) {
		f := strings.Fields(l.text)
		if len(f) < 6 {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[i+1:] // an address:service
		}
		if r := riskyService(name, f[5:]); r != "" {
			if _, ok := out[r]; !ok && len(out) < maxConfigItems {
				out[r] = configLine{l.text, l.n}
			}
		}
	}
	return out
}

func judgeInetd(oldB, curB []byte) []weakening {
	old, cur := inetdServices(oldB), inetdServices(curB)
	var out []weakening
	for _, r := range sortedKeys(cur) {
		if _, ok := old[r]; !ok {
			out = append(out, weakening{r + " service", "disabled", "enabled: " + cur[r].text, r + " logins (or file transfers) without encryption served by inetd", cur[r].n})
		}
	}
	return out
}

// xinetdServices are the risky services an xinetd file enables (disable
// unset or "no").
func xinetdServices(b []byte) map[string]int {
	out := map[string]int{}
	var name, risky string
	var server []string
	disabled, in := false, false
	start := 0
	for _, l := range configLines(b) {
		t := l.text
		switch {
		case strings.HasPrefix(t, "service "):
			name, server, disabled, in, start = strings.TrimSpace(strings.TrimSuffix(t[len("service "):], "{")), nil, false, false, l.n
			if strings.HasSuffix(t, "{") {
				in = true
			}
		case t == "{":
			in = true
		case t == "}":
			if in && name != "" && !disabled {
				if risky = riskyService(name, server); risky != "" {
					if _, ok := out[risky]; !ok && len(out) < maxConfigItems {
						out[risky] = start
					}
				}
			}
			name, in = "", false
		case in:
			k, v, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(strings.TrimRight(k, "+-")), strings.TrimSpace(v)
			switch k {
			case "disable":
				disabled = strings.EqualFold(v, "yes")
			case "server":
				server = []string{v}
			}
		}
	}
	return out
}

func judgeXinetd(oldB, curB []byte) []weakening {
	old, cur := xinetdServices(oldB), xinetdServices(curB)
	var out []weakening
	for _, r := range sortedKeys(cur) {
		if _, ok := old[r]; !ok {
			out = append(out, weakening{r + " service (disable)", "yes or absent", "no", r + " logins (or file transfers) without encryption served by xinetd", cur[r]})
		}
	}
	return out
}

var shells = map[string]bool{"sh": true, "ash": true, "bash": true, "dash": true, "hush": true, "msh": true, "ksh": true, "zsh": true}

// openShell reports a command that gives a shell without asking for a
// password: a shell itself, a getty or login that skips the login, or
// telnetd ("telnet").
func openShell(w []string) string {
	name := strings.TrimPrefix(cmdName(w[0]), "-")
	switch {
	case shells[name]:
		return "shell"
	case riskyDaemons[name] == "telnet":
		return "telnet"
	case strings.HasSuffix(name, "getty"):
		for i, a := range w {
			if (a == "-n" || strings.HasPrefix(a, "--skip-login")) && len(w) > 1 {
				return "shell"
			}
			if (a == "-l" || a == "--login-program") && i+1 < len(w) && shells[cmdName(w[i+1])] {
				return "shell"
			}
			if strings.HasPrefix(a, "--autologin") || a == "-a" {
				return "shell"
			}
		}
	case name == "login":
		for _, a := range w {
			if a == "-f" {
				return "shell"
			}
		}
	}
	return ""
}

// inittabOpen maps each console or tty that inittab gives a shell without
// login to its line, and "telnetd" to an entry that starts telnetd.
func inittabOpen(b []byte) map[string]configLine {
	out := map[string]configLine{}
	for _, l := range configLines(b) {
		f := strings.SplitN(l.text, ":", 4)
		if len(f) != 4 {
			continue
		}
		switch strings.TrimSpace(f[2]) {
		case "respawn", "askfirst", "once", "wait", "sysinit", "boot", "bootwait":
		default:
			continue
		}
		for _, w := range shellCommands(f[3]) {
			kind := openShell(w)
			key := ""
			switch kind {
			case "telnet":
				key = "telnetd"
			case "shell":
				key = strings.TrimSpace(f[0])
				if key == "" {
					key = "console"
				}
				key = "shell on " + key
			default:
				continue
			}
			if _, ok := out[key]; !ok && len(out) < maxConfigItems {
				out[key] = configLine{l.text, l.n}
			}
		}
	}
	return out
}

func judgeInittab(oldB, curB []byte) []weakening {
	old, cur := inittabOpen(oldB), inittabOpen(curB)
	var out []weakening
	for _, k := range sortedKeys(cur) {
		if _, ok := old[k]; ok {
			continue
		}
		if k == "telnetd" {
			out = append(out, weakening{"telnetd entry", "absent", cur[k].text, "telnet logins served from inittab", cur[k].n})
			continue
		}
		tty := strings.TrimPrefix(k, "shell on ")
		out = append(out, weakening{"entry for " + tty, "login required", cur[k].text, "a root shell without login on " + tty, cur[k].n})
	}
	return out
}

func isInitScript(p string) bool {
	switch serviceKind(p) {
	case "init script", "rc.local", "rc link", "systemd unit":
		return true
	}
	return false
}

// telnetdLines are an init script's command lines that start telnetd,
// and whether any serves a shell without login (-l /bin/sh).
func telnetdLines(b []byte) (lines []configLine, shell bool) {
	for _, l := range configLines(b) {
		for _, w := range shellCommands(l.text) {
			args := w
			switch cmdName(w[0]) {
			case "start-stop-daemon", "procd_set_param", "service_start":
				for i, a := range w {
					if riskyDaemons[cmdName(a)] == "telnet" {
						args = w[i:]
						break
					}
				}
			}
			if riskyDaemons[cmdName(args[0])] != "telnet" {
				continue
			}
			if len(lines) < 256 {
				lines = append(lines, configLine{l.text, l.n})
			}
			for i, a := range args {
				if strings.HasPrefix(a, "-l") {
					prog := strings.TrimPrefix(a, "-l")
					if prog == "" && i+1 < len(args) {
						prog = args[i+1]
					}
					if shells[strings.TrimPrefix(cmdName(prog), "-")] {
						shell = true
					}
				}
			}
		}
	}
	return lines, shell
}

func judgeTelnetd(oldB, curB []byte) []weakening {
	cur, curShell := telnetdLines(curB)
	if len(cur) == 0 {
		return nil
	}
	old, oldShell := telnetdLines(oldB)
	switch {
	case len(old) == 0:
		m := "telnet logins enabled"
		if curShell {
			m = "telnet gives a root shell without login"
		}
		return []weakening{{"telnetd", "not started", cur[0].text, m, cur[0].n}}
	case curShell && !oldShell:
		return []weakening{{"telnetd -l", fmt.Sprint(old[0].text), cur[0].text, "telnet gives a root shell without login", cur[0].n}}
	}
	return nil
}
