package analyze

import (
	"os"
	"reflect"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// moduleSource is a C file that compiles (gcc -c) to a relocatable object
// shaped like a kernel module: a .modinfo section of key=value strings.
func moduleSource(version string) string {
	return `
#define MODINFO(id, s) static const char __mod_##id[] __attribute__((section(".modinfo"), used, aligned(1))) = s
MODINFO(name, "name=rootkit");
MODINFO(license, "license=GPL");
MODINFO(author, "author=Nobody <nobody@example.com>");
MODINFO(description, "description=Hides processes");
MODINFO(version, "version=` + version + `");
MODINFO(vermagic, "vermagic=6.1.0-28-amd64 SMP preempt mod_unload modversions");
MODINFO(alias1, "alias=fs-hidden");
MODINFO(alias2, "alias=char-major-250-*");
MODINFO(depends, "depends=");
int init_module(void) { return 0; }
void cleanup_module(void) {}
`
}

func TestKernelModules(t *testing.T) {
	v1 := gccBuild(t, moduleSource("1.0"), "-c", "-fno-toplevel-reorder")
	v2 := gccBuild(t, moduleSource("2.0"), "-c", "-fno-toplevel-reorder")
	plainObj := gccBuild(t, "int f(void) { return 42; }\n", "-c")
	exe, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	const ko = "/lib/modules/6.1.0/extra/rootkit.ko"
	info := func(version string) map[string]string {
		return map[string]string{
			"name": "rootkit", "license": "GPL", "author": "Nobody <nobody@example.com>", "description": "Hides processes",
			"version": version, "vermagic": "6.1.0-28-amd64 SMP preempt mod_unload modversions",
			"alias": "fs-hidden, char-major-250-*", "depends": "",
		}
	}
	tests := []struct {
		name    string
		ch      *pipeline.Change
		msg     string
		modinfo map[string]string
		old     map[string]string // old_modinfo, nil for none
	}{
		{
			name:    "new module",
			ch:      added(fileEntry(ko, string(v1), 0o644)),
			msg:     "new kernel module rootkit (Hides processes)",
			modinfo: info("1.0"),
		},
		{
			name:    "changed module",
			ch:      changed(fileEntry(ko, string(v1), 0o644), fileEntry(ko, string(v2), 0o644), "content"),
			msg:     "kernel module rootkit changed (Hides processes)",
			modinfo: info("2.0"),
			old:     info("1.0"),
		},
		{
			name:    "module that was something else before",
			ch:      changed(fileEntry(ko, "not a module", 0o644), fileEntry(ko, string(v2), 0o644), "content"),
			msg:     "kernel module rootkit changed",
			modinfo: info("2.0"),
		},
		{
			name:    "a module under any name",
			ch:      added(fileEntry("/usr/lib/vendor/helper.bin", string(v1), 0o644)),
			msg:     "new kernel module rootkit",
			modinfo: info("1.0"),
		},
		{name: "ordinary executable", ch: added(fileEntry("/usr/bin/true", string(exe), 0o755))},
		{name: "relocatable object without .modinfo", ch: added(fileEntry("/usr/lib/x.o", string(plainObj), 0o644))},
		{name: "removed module", ch: removed(fileEntry(ko, string(v1), 0o644))},
		{name: "module with only its mode changed", ch: changed(fileEntry(ko, string(v1), 0o644), fileEntry(ko, string(v1), 0o600), "mode")},
		{name: "not ELF", ch: added(fileEntry("/lib/modules/6.1.0/modules.dep", "extra/rootkit.ko:\n", 0o644))},
		{name: "truncated ELF", ch: added(fileEntry("/lib/modules/6.1.0/broken.ko", string(v1[:100]), 0o644))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, KernelModules{}, scanned(t, tt.ch))
			if tt.modinfo == nil {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDKernelModuleAdded, pipeline.SeverityHigh, tt.ch)
			contains(t, "message", f.Message, tt.msg)
			if !reflect.DeepEqual(f.Evidence["modinfo"], tt.modinfo) {
				t.Errorf("modinfo = %#v, want %#v", f.Evidence["modinfo"], tt.modinfo)
			}
			old, has := f.Evidence["old_modinfo"]
			if tt.old == nil && has || tt.old != nil && !reflect.DeepEqual(old, tt.old) {
				t.Errorf("old_modinfo = %#v, want %#v", old, tt.old)
			}
			if f.Evidence["sha256"] != tt.ch.New.SHA256 {
				t.Errorf("sha256 = %v, want %s", f.Evidence["sha256"], tt.ch.New.SHA256)
			}
			contains(t, "inspect", f.Evidence["inspect"].(string), "modinfo DIR"+tt.ch.Path)
		})
	}
}

// TestKernelModulesNameFromPath: without a name= field the file name
// stands for the module.
func TestKernelModulesNameFromPath(t *testing.T) {
	obj := gccBuild(t, `static const char l[] __attribute__((section(".modinfo"), used, aligned(1))) = "license=GPL";`+"\n", "-c")
	ch := added(fileEntry("/lib/modules/6.1.0/kernel/drivers/net/wg.ko", string(obj), 0o644))
	f := only(t, analyzeWith(t, KernelModules{}, scanned(t, ch)), pipeline.IDKernelModuleAdded, pipeline.SeverityHigh, ch)
	if f.Message != "new kernel module wg" {
		t.Errorf("message = %q, want %q", f.Message, "new kernel module wg")
	}
	if !reflect.DeepEqual(f.Evidence["modinfo"], map[string]string{"license": "GPL"}) {
		t.Errorf("modinfo = %#v", f.Evidence["modinfo"])
	}
}
