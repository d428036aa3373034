package verifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"

	"github.com/fwvet/fwvet/pipeline"
)

// SLSA provenance predicate types fwvet reads.
const (
	SLSAv02 = "https://slsa.dev/provenance/v0.2"
	SLSAv1  = "https://slsa.dev/provenance/v1"
)

// provenanceVerifier checks that a signed SLSA provenance attestation says
// the artifact was built by the given builder from the given source, and,
// when a certificate signed it, that the certificate binds that builder.
type provenanceVerifier struct {
	o        Options
	auths    []*authority
	evidence *gathered
}

var _ pipeline.Verifier = (*provenanceVerifier)(nil)

// Name implements pipeline.Verifier.
func (*provenanceVerifier) Name() string { return "provenance" }

// provenance is what fwvet reads of either predicate version.
type provenance struct {
	builderID, builderField string
	sourceURI, sourceField  string
	ref                     string
}

// Verify implements pipeline.Verifier.
func (v *provenanceVerifier) Verify(ctx context.Context, art *pipeline.Artifact) pipeline.Check {
	c := pipeline.Check{Name: "provenance"}
	ev, err := v.evidence.get(ctx, v.o, art)
	if err != nil {
		c.Status, c.Detail = pipeline.CheckError, "finding attestations: "+err.Error()
		return c
	}
	var reasons []string
	found := 0
	for _, e := range ev {
		if e.raw != nil || e.simple != nil {
			continue
		}
		for _, a := range v.auths {
			st, err := verifyEvidence(ctx, a, e, art)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: not signed by %s for %s: %v", e.source, a.name, art.Digest, err))
				continue
			}
			if st == nil || (st.PredicateType != SLSAv02 && st.PredicateType != SLSAv1) {
				break // a signature, or an attestation of another kind
			}
			found++
			p, err := readProvenance(st)
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("%s: %v", e.source, err))
				break
			}
			if why := v.mismatch(p); why != "" {
				reasons = append(reasons, fmt.Sprintf("%s (signed by %s): %s", e.source, a.name, why))
				break
			}
			bound, why := v.bound(a, st.cert)
			if why != "" {
				reasons = append(reasons, fmt.Sprintf("%s (signed by %s): %s", e.source, a.name, why))
				break
			}
			c.Status = pipeline.CheckPass
			c.Detail = fmt.Sprintf("%s provenance in %s, signed by %s: built by %s (%s) from %s", st.PredicateType, e.source, a.name, p.builderID, bound, p.sourceURI)
			if p.ref != "" {
				c.Detail += " at " + p.ref
			}
			return c
		}
	}
	c.Status = pipeline.CheckFail
	switch {
	case found == 0 && len(reasons) == 0:
		c.Detail = fmt.Sprintf("no SLSA provenance attestation found for %s", art.Digest)
	default:
		c.Detail = strings.Join(reasons, "; ")
	}
	return c
}

func readProvenance(st *statement) (*provenance, error) {
	var p struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Invocation struct {
			ConfigSource struct {
				URI string `json:"uri"`
			} `json:"configSource"`
		} `json:"invocation"`
		Materials []struct {
			URI string `json:"uri"`
		} `json:"materials"`
		BuildDefinition struct {
			ExternalParameters struct {
				Workflow struct {
					Repository string `json:"repository"`
					Ref        string `json:"ref"`
				} `json:"workflow"`
				Source any `json:"source"`
			} `json:"externalParameters"`
			ResolvedDependencies []struct {
				URI string `json:"uri"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
		} `json:"runDetails"`
	}
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("the %s predicate does not parse: %w", st.PredicateType, err)
	}
	out := &provenance{}
	if st.PredicateType == SLSAv02 {
		out.builderID, out.builderField = p.Builder.ID, "predicate.builder.id"
		switch {
		case p.Invocation.ConfigSource.URI != "":
			out.sourceURI, out.sourceField = p.Invocation.ConfigSource.URI, "predicate.invocation.configSource.uri"
		case len(p.Materials) > 0:
			out.sourceURI, out.sourceField = p.Materials[0].URI, "predicate.materials[0].uri"
		}
	} else {
		out.builderID, out.builderField = p.RunDetails.Builder.ID, "predicate.runDetails.builder.id"
		ext := p.BuildDefinition.ExternalParameters
		switch {
		case len(p.BuildDefinition.ResolvedDependencies) > 0:
			out.sourceURI, out.sourceField = p.BuildDefinition.ResolvedDependencies[0].URI, "predicate.buildDefinition.resolvedDependencies[0].uri"
		case ext.Workflow.Repository != "":
			out.sourceURI, out.sourceField = ext.Workflow.Repository, "predicate.buildDefinition.externalParameters.workflow.repository"
			out.ref = ext.Workflow.Ref
		default:
			if s, ok := ext.Source.(string); ok {
				out.sourceURI, out.sourceField = s, "predicate.buildDefinition.externalParameters.source"
			}
		}
	}
	if u, ref := splitSource(out.sourceURI); ref != "" && out.ref == "" {
		out.sourceURI, out.ref = u, ref
	}
	return out, nil
}

// mismatch names the first field of the provenance that is not what was
// asked, or "".
func (v *provenanceVerifier) mismatch(p *provenance) string {
	if v.o.BuilderID != "" && !builderMatches(v.o.BuilderID, p.builderID) {
		return fmt.Sprintf("%s is %q, want %q", p.builderField, p.builderID, v.o.BuilderID)
	}
	if v.o.SourceURI != "" && normalizeSource(p.sourceURI) != normalizeSource(v.o.SourceURI) {
		field := p.sourceField
		if field == "" {
			field = "the source"
		}
		return fmt.Sprintf("%s is %q, want %q", field, p.sourceURI, v.o.SourceURI)
	}
	if v.o.SourceBranch != "" && p.ref != "refs/heads/"+v.o.SourceBranch {
		return fmt.Sprintf("the source ref is %q, want branch %q", p.ref, v.o.SourceBranch)
	}
	if v.o.SourceTag != "" && p.ref != "refs/tags/"+v.o.SourceTag {
		return fmt.Sprintf("the source ref is %q, want tag %q", p.ref, v.o.SourceTag)
	}
	return ""
}

// Where a Fulcio certificate binds the builder that signed: the workflow
// identity in its SAN, and for reusable and delegated workflows the Build
// Signer URI (the instructions that signed) and Build Config URI (the
// top-level instructions that called them).
const (
	fieldSAN            = "SAN"
	fieldBuildSignerURI = "Build Signer URI (1.3.6.1.4.1.57264.1.9)"
	fieldBuildConfigURI = "Build Config URI (1.3.6.1.4.1.57264.1.18)"
)

// certBuilder is one builder identity a certificate binds, and where.
type certBuilder struct{ field, uri string }

// certBuilders are the builder identities a verified certificate binds:
// only URIs (an e-mail SAN names a person, not a builder). The deprecated
// GitHub Workflow extensions (1.3.6.1.4.1.57264.1.2 to .6) name a
// workflow's display name, not its path, and bind no builder id.
func certBuilders(s *certificate.Summary) []certBuilder {
	var out []certBuilder
	for _, b := range []certBuilder{
		{fieldSAN, s.SubjectAlternativeName},
		{fieldBuildSignerURI, s.BuildSignerURI},
		{fieldBuildConfigURI, s.BuildConfigURI},
	} {
		if strings.Contains(b.uri, "://") {
			out = append(out, b)
		}
	}
	return out
}

// bound says how the builder asked for is bound to the signer, or why it
// is not. The predicate's builder id is what the signer claims; the
// builder that counts is the one the signing certificate binds, as
// slsa-verifier has it: a certificate issued to another workflow does not
// vouch for a predicate that names a trusted builder. A key binds no
// builder: the key holder is trusted to say which builder ran, and the
// result says so.
func (v *provenanceVerifier) bound(a *authority, cert *certificate.Summary) (string, string) {
	switch {
	case v.o.BuilderID == "":
		return "the builder is not checked: no --builder-id", ""
	case a.key != nil:
		return "the builder is only claimed by the key holder: a key binds no builder", ""
	case cert == nil:
		return "", fmt.Sprintf("--builder-id %q is not bound: the signature has no certificate", v.o.BuilderID)
	}
	bs := certBuilders(cert)
	for _, b := range bs {
		if builderMatches(v.o.BuilderID, b.uri) {
			return fmt.Sprintf("bound by the certificate's %s %s", b.field, b.uri), ""
		}
	}
	binds := make([]string, 0, len(bs))
	for _, b := range bs {
		binds = append(binds, fmt.Sprintf("%s %q", b.field, b.uri))
	}
	if len(binds) == 0 {
		binds = append(binds, fmt.Sprintf("no builder (its SAN %q is not a URI and it has no Build Signer or Build Config URI)", cert.SubjectAlternativeName))
	}
	return "", fmt.Sprintf("--builder-id %q is not bound by the signing certificate, which binds %s: the predicate's builder id is only the signer's claim", v.o.BuilderID, strings.Join(binds, ", "))
}

// builderMatches: the same id; the id with a version ("…@refs/tags/v1.2"
// for the id without one); or, for a pattern ending in "*", the prefix.
func builderMatches(want, got string) bool {
	if strings.HasSuffix(want, "*") {
		return strings.HasPrefix(got, strings.TrimSuffix(want, "*"))
	}
	return got == want || (!strings.Contains(want, "@") && strings.HasPrefix(got, want+"@"))
}

// splitSource separates "git+https://host/repo@refs/heads/main" into the
// repository and the ref.
func splitSource(u string) (string, string) {
	if i := strings.LastIndex(u, "@"); i > strings.Index(u, "://")+2 && i > 0 {
		return u[:i], u[i+1:]
	}
	return u, ""
}

// normalizeSource makes "git+https://github.com/org/repo.git",
// "https://github.com/org/repo" and "github.com/org/repo" equal.
func normalizeSource(u string) string {
	u, _ = splitSource(u)
	u = strings.TrimPrefix(u, "git+")
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(u, "/"), ".git"))
}
