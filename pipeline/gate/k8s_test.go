package gate_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// manifests decodes every document of the shipped manifests strictly (an
// unknown field is an error) into the k8s.io/api types; no cluster is
// reachable here.
func manifests(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("../../scripts/k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under scripts/k8s: %v", err)
	}
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj any
			switch meta.Kind {
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Service":
				obj = &corev1.Service{}
			case "Secret":
				obj = &corev1.Secret{}
			case "Job":
				obj = &batchv1.Job{}
			default:
				t.Fatalf("%s: a %q manifest this test does not know", f, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: %s %s: %v", f, meta.Kind, meta.Metadata.Name, err)
			}
			out[meta.Kind+"/"+meta.Metadata.Name] = obj
		}
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	get := func(key string) any {
		t.Helper()
		o, ok := m[key]
		if !ok {
			t.Fatalf("no %s among the manifests", key)
		}
		return o
	}
	storeFromSecret := func(c corev1.Container) {
		t.Helper()
		for _, e := range c.Env {
			if e.Name == "FWVET_STORE" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "fwvet-store" {
				return
			}
		}
		t.Errorf("%s: FWVET_STORE does not come from the fwvet-store Secret", c.Name)
	}
	mounted := func(spec corev1.PodSpec, c corev1.Container, secret, path string) {
		t.Helper()
		for _, v := range spec.Volumes {
			if v.Secret == nil || v.Secret.SecretName != secret {
				continue
			}
			for _, vm := range c.VolumeMounts {
				if vm.Name == v.Name && vm.MountPath == path && vm.ReadOnly {
					return
				}
			}
		}
		t.Errorf("%s: Secret %s is not mounted read-only at %s", c.Name, secret, path)
	}

	gate := get("Deployment/fwvet-gate").(*appsv1.Deployment)
	gc := gate.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(gc.Image, "registry.example.com/fwvet/fwvet:") || gc.Args[0] != "serve" || !slices.Contains(gc.Args, "$(FWVET_STORE)") {
		t.Errorf("gate: image %s, args %v", gc.Image, gc.Args)
	}
	storeFromSecret(gc)
	mounted(gate.Spec.Template.Spec, gc, "fwvet-sign-key", "/etc/fwvet/sign")
	mounted(gate.Spec.Template.Spec, gc, "fwvet-tls", "/etc/fwvet/tls")
	if gc.ReadinessProbe == nil || gc.ReadinessProbe.HTTPGet == nil || gc.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Error("gate: no readiness probe on /healthz")
	}
	svc := get("Service/fwvet-gate").(*corev1.Service)
	if svc.Spec.Selector["app.kubernetes.io/component"] != "gate" || svc.Spec.Ports[0].TargetPort.String() != "https" {
		t.Errorf("service: %+v", svc.Spec)
	}
	worker := get("Deployment/fwvet-worker").(*appsv1.Deployment)
	wc := worker.Spec.Template.Spec.Containers[0]
	if wc.Args[0] != "worker" || !slices.Contains(wc.Args, "$(FWVET_STORE)") {
		t.Errorf("worker args %v", wc.Args)
	}
	storeFromSecret(wc)

	job := get("Job/fwvet-audit").(*batchv1.Job)
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion || job.Spec.Completions == nil {
		t.Fatalf("audit job: completion mode %v, want Indexed", job.Spec.CompletionMode)
	}
	jc := job.Spec.Template.Spec.Containers[0]
	i := slices.Index(jc.Args, "--shard")
	if jc.Args[0] != "audit" || i < 0 || i+1 >= len(jc.Args) || jc.Args[i+1] != "$(JOB_COMPLETION_INDEX)/"+itoa(*job.Spec.Completions) {
		t.Errorf("audit job args %v: want --shard $(JOB_COMPLETION_INDEX)/%d", jc.Args, *job.Spec.Completions)
	}
	storeFromSecret(jc)
	for _, name := range []string{"Secret/fwvet-store", "Secret/fwvet-rollout-token"} {
		s := get(name).(*corev1.Secret)
		if len(s.StringData) != 1 {
			t.Errorf("%s holds %d keys", name, len(s.StringData))
		}
	}
}

func itoa(n int32) string {
	var b []byte
	for n >= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, b...))
}
