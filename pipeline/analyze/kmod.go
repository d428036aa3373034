package analyze

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// KernelModules reports new and changed kernel modules (kernel-module-added):
// relocatable ELF objects with a .modinfo section, whose fields (name,
// version magic, license, author, description, dependencies) are the
// evidence. Code in the kernel can hide anything.
type KernelModules struct{}

var _ pipeline.Analyzer = KernelModules{}

// Name implements pipeline.Analyzer.
func (KernelModules) Name() string { return "kernel-modules" }

// Analyze implements pipeline.Analyzer.
func (KernelModules) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		s := in.Scans[ch.Key]
		if s == nil || s.New == nil || s.New.Magic != "elf" || (ch.Kind != pipeline.ChangeAdded && ch.Kind != pipeline.ChangeModified) {
			continue
		}
		info, err := modinfo(ctx, in, ch.New)
		if err != nil {
			return nil, err
		}
		if info == nil {
			continue
		}
		ev := map[string]any{"modinfo": info, "sha256": ch.New.SHA256,
			"inspect": fmt.Sprintf("fwvet unpack REF DIR && modinfo DIR%s", ch.Path)}
		name := info["name"]
		if name == "" {
			name = strings.TrimSuffix(ch.Path[strings.LastIndex(ch.Path, "/")+1:], ".ko")
		}
		msg := fmt.Sprintf("new kernel module %s", name)
		if ch.Kind == pipeline.ChangeModified {
			msg = fmt.Sprintf("kernel module %s changed", name)
			if old, err := modinfo(ctx, in, ch.Old); err == nil && old != nil {
				ev["old_modinfo"] = old
			}
		}
		if d := info["description"]; d != "" {
			msg += fmt.Sprintf(" (%s)", d)
		}
		out = append(out, finding(pipeline.IDKernelModuleAdded, ch, msg, ev))
	}
	return out, nil
}

// modinfo reads the .modinfo section of a kernel module, or nil if the file
// is not one.
func modinfo(ctx context.Context, in *pipeline.AnalysisInput, e *pipeline.Entry) (map[string]string, error) {
	ra, done, err := openAt(ctx, e, in.WorkDir)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := elf.NewFile(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil || f.Type != elf.ET_REL {
		return nil, nil
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil || sec.Size > 1<<20 {
		return nil, nil
	}
	b, err := sec.Data()
	if err != nil {
		return nil, nil
	}
	info := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok || k == "" {
			continue
		}
		if prev, dup := info[k]; dup {
			v = prev + ", " + v // alias=, depends= may repeat
		}
		info[k] = v
	}
	return info, nil
}
