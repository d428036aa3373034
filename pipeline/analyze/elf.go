package analyze

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// ELF compares each modified ELF binary and shared library with its
// previous version: dynamic imports and exports, NEEDED libraries,
// interpreter, build id, sections and hardening. New imports from the
// exec, shell and network families give elf-import-added; a lost stack
// protector, NX, RELRO, PIE or FORTIFY gives hardening-regressed (see
// hardening.go), from the same parse. Statically linked and stripped
// binaries, which import nothing, are compared by the symbols and strings
// they do have.
type ELF struct{}

var _ pipeline.Analyzer = ELF{}

// Name implements pipeline.Analyzer.
func (ELF) Name() string { return "elf" }

// riskyImports are the calls through which a binary runs commands or talks
// on the network, by family.
var riskyImports = map[string]string{
	"system": "exec", "popen": "exec", "execl": "exec", "execle": "exec", "execlp": "exec", "execv": "exec",
	"execve": "exec", "execvp": "exec", "execvpe": "exec", "fexecve": "exec", "posix_spawn": "exec", "posix_spawnp": "exec",
	"socket": "network", "bind": "network", "listen": "network", "accept": "network", "accept4": "network",
	"connect": "network", "recvfrom": "network", "recvmsg": "network", "sendto": "network", "sendmsg": "network",
	"getaddrinfo": "network", "gethostbyname": "network", "inet_aton": "network", "inet_addr": "network",
	"forkpty": "shell", "openpty": "shell", "ptrace": "shell", "dlopen": "shell",
}

// elfInfo is what fwvet reads from one ELF file.
type elfInfo struct {
	static      bool
	imports     map[string]bool
	exports     map[string]bool
	needed      []string
	interpreter string
	buildID     string
	// symbols are the function symbols of an unstripped static binary.
	symbols  map[string]bool
	sections map[string]elfSection
	// machine is the architecture ("EM_MIPS"); hardened is false for an
	// object hardening does not apply to.
	machine  string
	hard     hardening
	hardened bool
}

type elfSection struct {
	off, size int64
	sha256    string
}

// readELF parses an ELF file; hashSections hashes every section's bytes.
func readELF(r io.ReaderAt, hashSections bool) (*elfInfo, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := &elfInfo{imports: map[string]bool{}, exports: map[string]bool{}, symbols: map[string]bool{}, sections: map[string]elfSection{}}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP && p.Filesz < 4096 {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				info.interpreter = strings.TrimRight(string(b), "\x00")
			}
		}
	}
	info.static = f.Section(".dynamic") == nil
	if !info.static {
		syms, _ := f.DynamicSymbols()
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_FUNC && elf.ST_TYPE(s.Info) != elf.STT_NOTYPE {
				continue
			}
			if s.Section == elf.SHN_UNDEF {
				info.imports[s.Name] = true
			} else if elf.ST_BIND(s.Info) != elf.STB_LOCAL {
				info.exports[s.Name] = true
			}
		}
		info.needed, _ = f.ImportedLibraries()
	} else if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				info.symbols[s.Name] = true
			}
		}
	}
	info.machine = f.Machine.String()
	info.hard, info.hardened = readHardening(f, info)
	for _, s := range f.Sections {
		sec := elfSection{off: int64(s.Offset), size: int64(s.Size)}
		if s.Name == ".note.gnu.build-id" && s.Size < 1024 {
			if b, err := s.Data(); err == nil && len(b) > 16 {
				namesz := int(f.ByteOrder.Uint32(b[0:]))
				desc := 12 + (namesz+3)&^3
				if desc < len(b) {
					info.buildID = hex.EncodeToString(b[desc:])
				}
			}
		}
		if hashSections && s.Type != elf.SHT_NOBITS && s.Size > 0 {
			h := sha256.New()
			if _, err := io.Copy(h, s.Open()); err == nil {
				sec.sha256 = hex.EncodeToString(h.Sum(nil))
			}
		}
		if s.Name != "" && s.Type != elf.SHT_NOBITS {
			// A section with no bytes in the file (.bss) covers no offset.
			info.sections[s.Name] = sec
		}
	}
	return info, nil
}

// Analyze implements pipeline.Analyzer. Binaries are parsed concurrently;
// findings keep the order of the changes.
func (ELF) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	return eachChange(ctx, in, modifiedELF(in), func(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
		return elfChange(ctx, in, ch, in.Scans[ch.Key])
	})
}

// elfChange compares one modified binary with its previous version: what
// it newly imports (elf-import-added) and what hardening it lost
// (hardening-regressed).
func elfChange(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change, s *pipeline.Scan) ([]pipeline.Finding, error) {
	read := func(e *pipeline.Entry, hash bool) (*elfInfo, error) {
		ra, done, err := openAt(ctx, e, in.WorkDir)
		if err != nil {
			return nil, err
		}
		defer done()
		info, err := readELF(io.NewSectionReader(ra, 0, ra.Size()), hash)
		if err != nil {
			// Not parseable as ELF after all (a truncated or hostile
			// header): the file-level finding stands for it.
			return nil, nil
		}
		return info, nil
	}
	old, err := read(ch.Old, false)
	if err != nil || old == nil {
		return nil, err
	}
	cur, err := read(ch.New, old.static)
	if err != nil || cur == nil {
		return nil, err
	}
	var out []pipeline.Finding
	if old.hardened && cur.hardened {
		if f := hardeningFinding(ch, cur.machine, old.hard, cur.hard); f != nil {
			out = append(out, *f)
		}
	}
	if f := importFinding(ctx, in, ch, s, old, cur); f != nil {
		out = append(out, *f)
	}
	return out, nil
}

// importFinding is the elf-import-added finding of a modified binary, or
// nil.
func importFinding(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change, s *pipeline.Scan, old, cur *elfInfo) *pipeline.Finding {
	ev := map[string]any{}
	var risky []string
	if added := newKeys(old.imports, cur.imports); len(added) > 0 {
		ev["imports_added"] = added
		for _, name := range added {
			if fam, ok := riskyImports[name]; ok {
				risky = append(risky, name+" ("+fam+")")
			}
		}
	}
	if removed := newKeys(cur.imports, old.imports); len(removed) > 0 {
		ev["imports_removed"] = removed
	}
	if added := newKeys(old.exports, cur.exports); len(added) > 0 {
		ev["exports_added"] = capList(added, 50)
	}
	if added := newKeys(toSet(old.needed), toSet(cur.needed)); len(added) > 0 {
		ev["needed_added"] = added
	}
	if old.interpreter != cur.interpreter {
		ev["interpreter"] = map[string]string{"old": old.interpreter, "new": cur.interpreter}
	}
	if old.buildID != cur.buildID {
		ev["build_id"] = map[string]string{"old": old.buildID, "new": cur.buildID}
	}
	if cur.static {
		// No dynamic imports to compare: the symbols, if not stripped, and
		// the exec, shell and network strings stand in for them.
		for _, name := range newKeys(old.symbols, cur.symbols) {
			if fam, ok := riskyImports[name]; ok {
				risky = append(risky, name+" ("+fam+", symbol)")
			}
		}
		var strs []string
		for str := range s.New.Notable {
			if _, had := s.Old.Notable[str]; !had {
				strs = append(strs, str)
			}
		}
		sort.Strings(strs)
		if len(strs) > 0 {
			ev["strings_added"] = strs
			for _, str := range strs {
				risky = append(risky, fmt.Sprintf("%q (string)", str))
			}
		}
		if changed := changedSections(ctx, in, ch, cur); len(changed) > 0 {
			ev["sections_changed"] = changed
		}
	}
	interpMoved := old.interpreter != cur.interpreter && cur.interpreter != "" &&
		!strings.HasPrefix(cur.interpreter, "/lib") && !strings.HasPrefix(cur.interpreter, "/usr/lib")
	if len(risky) == 0 && !interpMoved {
		return nil
	}
	ev["linking"] = map[bool]string{true: "static", false: "dynamic"}[cur.static]
	f := finding(pipeline.IDELFImportAdded, ch, "", ev)
	switch {
	case len(risky) > 0:
		f.Message = "newly imports " + strings.Join(risky, ", ")
	default:
		f.Message = "program interpreter moved to " + cur.interpreter
	}
	ev["inspect"] = fmt.Sprintf("fwvet unpack REF DIR && readelf --dyn-syms -W DIR%s", ch.Path)
	if interpMoved {
		f.Severity = pipeline.SeverityHigh
		ev["inspect"] = fmt.Sprintf("fwvet unpack REF DIR && readelf -l DIR%s", ch.Path)
	}
	return &f
}

// changedSections names the sections of a static binary whose bytes
// differ from the previous version's.
func changedSections(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change, cur *elfInfo) []string {
	ra, done, err := openAt(ctx, ch.Old, in.WorkDir)
	if err != nil {
		return nil
	}
	defer done()
	old, err := readELF(io.NewSectionReader(ra, 0, ra.Size()), true)
	if err != nil {
		return nil
	}
	var out []string
	for name, s := range cur.sections {
		if o, ok := old.sections[name]; !ok || o.sha256 != s.sha256 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// newKeys lists, sorted, the keys of b that a lacks.
func newKeys(a, b map[string]bool) []string {
	var out []string
	for k := range b {
		if !a[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func toSet(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

func capList(l []string, n int) []string {
	if len(l) > n {
		return append(l[:n:n], fmt.Sprintf("… and %d more", len(l)-n))
	}
	return l
}
