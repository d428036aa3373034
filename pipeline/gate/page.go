package gate

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
)

// The reviewer's page: server-rendered, no JavaScript, behind the same
// tokens as the API. A browser logs in once with a token, which is kept in
// an HttpOnly, SameSite=Strict cookie; every form carries a token derived
// from it, so that another site cannot post a decision in the reviewer's
// name.

//go:embed page/*.html
var pageFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"json": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
}).ParseFS(pageFS, "page/*.html"))

const (
	cookieName = "fwvet_token"
	// pageList is how many recent records the front page lists.
	pageList = 100
)

// pageData is what every page template sees.
type pageData struct {
	Title  string
	Role   Role
	CSRF   string
	Error  string
	Notice string
	// The front page.
	Records []pageRecord
	// One verdict.
	Record    *pipeline.Record
	Report    *pipeline.Report
	Groups    []findingGroup
	Decision  *pipeline.Decision
	Decidable bool
}

type pageRecord struct {
	pipeline.Record
	Decision *pipeline.Decision
}

type findingGroup struct {
	Severity pipeline.Severity
	Findings []pipeline.Finding
}

func (s *Service) pageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.pageIndex)
	mux.HandleFunc("POST /login", s.pageLogin)
	mux.HandleFunc("POST /logout", s.pageLogout)
	mux.HandleFunc("GET /verdicts/{id}", s.pageVerdict)
	mux.HandleFunc("POST /verdicts/{id}/decide", s.pageDecide)
}

// csrf is the form token of a session: a MAC of a fixed label under the
// session's own token, which the page cannot be made to reveal elsewhere.
func csrf(token string) string { return FormToken(token) }

// FormToken is the form token of a session whose token is token.
func FormToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("fwvet reviewer page form"))
	return hex.EncodeToString(m.Sum(nil))
}

// session is the role of the request's cookie, or "" with no valid one.
func (s *Service) session(r *http.Request) (Role, string) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return "", ""
	}
	role, err := s.tokens.Check(r.Context(), c.Value)
	if err != nil {
		return "", ""
	}
	return role, c.Value
}

func (s *Service) render(w http.ResponseWriter, code int, name string, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		s.log.WithError(err).Error("rendering the reviewer's page")
	}
}

func (s *Service) pageIndex(w http.ResponseWriter, r *http.Request) {
	role, tok := s.session(r)
	if role == "" {
		s.render(w, http.StatusOK, "login.html", pageData{Title: "fwvet gate: sign in"})
		return
	}
	ctx := r.Context()
	recs, err := s.cfg.Store.List(ctx, pageList)
	if err != nil {
		s.log.WithError(err).Error("listing verdicts for the page")
		s.render(w, http.StatusInternalServerError, "index.html", pageData{Title: "fwvet gate", Role: role, CSRF: csrf(tok), Error: "the store could not be read"})
		return
	}
	d := pageData{Title: "fwvet gate: recent verdicts", Role: role, CSRF: csrf(tok)}
	for _, rec := range recs {
		if !pipeline.IsVerdict(rec.Verdict) {
			continue
		}
		pr := pageRecord{Record: rec}
		if pipeline.Decidable(rec.Verdict) {
			if pr.Decision, err = s.cfg.Store.Decision(ctx, rec.ID); err != nil {
				s.log.WithError(err).WithField("verdict", rec.ID).Warn("reading a decision for the page")
			}
		}
		d.Records = append(d.Records, pr)
	}
	s.render(w, http.StatusOK, "index.html", d)
}

func (s *Service) pageLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "login.html", pageData{Title: "fwvet gate: sign in", Error: "malformed form"})
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if _, err := s.tokens.Check(r.Context(), tok); err != nil {
		s.log.WithFields(logrus.Fields{"path": r.URL.Path, "remote": remoteHost(r)}).Warn("refused: page sign-in with an unknown or revoked token")
		s.render(w, http.StatusUnauthorized, "login.html", pageData{Title: "fwvet gate: sign in", Error: "unknown or revoked token"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Service) pageLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// pageVerdict shows one report: its findings grouped by severity, worst
// first, with their evidence, and the decision form for a review or fail.
func (s *Service) pageVerdict(w http.ResponseWriter, r *http.Request) {
	role, tok := s.session(r)
	if role == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d, code := s.verdictPage(r, role, tok)
	s.render(w, code, "verdict.html", d)
}

func (s *Service) verdictPage(r *http.Request, role Role, tok string) (pageData, int) {
	d := pageData{Title: "fwvet gate: verdict", Role: role, CSRF: csrf(tok)}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.Error = "no such verdict"
		return d, http.StatusNotFound
	}
	ctx := r.Context()
	rec, err := s.cfg.Store.Get(ctx, id)
	if err != nil || !pipeline.IsVerdict(rec.Verdict) {
		d.Error = fmt.Sprintf("no verdict %d", id)
		return d, http.StatusNotFound
	}
	var rep pipeline.Report
	if err := json.Unmarshal(rec.Report, &rep); err != nil {
		d.Error = fmt.Sprintf("verdict %d's report cannot be read", id)
		return d, http.StatusInternalServerError
	}
	d.Title = fmt.Sprintf("fwvet gate: verdict %d", id)
	d.Record, d.Report = rec, &rep
	d.Groups = groups(rep.Findings)
	d.Decidable = pipeline.Decidable(rec.Verdict)
	if d.Decidable {
		if d.Decision, err = s.cfg.Store.Decision(ctx, id); err != nil {
			s.log.WithError(err).WithField("verdict", id).Warn("reading a decision for the page")
		}
	}
	return d, http.StatusOK
}

// groups sorts findings into severities, worst first, undisclosed first
// within each.
func groups(fs []pipeline.Finding) []findingGroup {
	by := map[pipeline.Severity][]pipeline.Finding{}
	for _, f := range fs {
		by[f.Severity] = append(by[f.Severity], f)
	}
	var out []findingGroup
	for sev := pipeline.SeverityCritical; sev >= pipeline.SeverityInfo; sev-- {
		g := by[sev]
		if len(g) == 0 {
			continue
		}
		sort.SliceStable(g, func(i, j int) bool { return !g[i].Disclosed && g[j].Disclosed })
		out = append(out, findingGroup{Severity: sev, Findings: g})
	}
	return out
}

func (s *Service) pageDecide(w http.ResponseWriter, r *http.Request) {
	role, tok := s.session(r)
	if role == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	log := s.log.WithFields(logrus.Fields{"path": r.URL.Path, "remote": remoteHost(r)})
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(csrf(tok))) {
		log.Warn("refused: a decision form without this session's form token")
		http.Error(w, "the form is not from this session", http.StatusForbidden)
		return
	}
	d, code := s.verdictPage(r, role, tok)
	if code != http.StatusOK {
		s.render(w, code, "verdict.html", d)
		return
	}
	if !role.allows(RoleReview) {
		log.WithField("role", role).Warn("refused: a decision by a token without the review role")
		d.Error = fmt.Sprintf("a %s token may not decide: it needs the review role", role)
		s.render(w, http.StatusForbidden, "verdict.html", d)
		return
	}
	var approve bool
	switch r.PostForm.Get("action") {
	case "approve":
		approve = true
	case "reject":
	default:
		http.Error(w, "action: want approve or reject", http.StatusBadRequest)
		return
	}
	dec := pipeline.Decision{VerdictID: d.Record.ID, Approve: approve, Reason: r.PostForm.Get("reason"), By: r.PostForm.Get("by")}
	if err := dec.Validate(); err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusBadRequest, "verdict.html", d)
		return
	}
	if _, err := s.cfg.Store.AppendDecision(r.Context(), dec); err != nil {
		if errors.Is(err, pipeline.ErrNotDecidable) {
			d.Error = err.Error()
			s.render(w, http.StatusConflict, "verdict.html", d)
			return
		}
		log.WithError(err).Error("recording a decision from the page")
		d.Error = "recording the decision failed"
		s.render(w, http.StatusInternalServerError, "verdict.html", d)
		return
	}
	s.metrics.decisions.WithLabelValues(dec.Action()).Inc()
	log.WithFields(logrus.Fields{"verdict": d.Record.ID, "action": dec.Action(), "by": dec.By}).Info("decision recorded from the page")
	http.Redirect(w, r, fmt.Sprintf("/verdicts/%d", d.Record.ID), http.StatusSeeOther)
}
