package gate_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/gate"
)

var screenshot = flag.String("screenshot", "", "write the reviewer page's screenshot to this PNG file (for the README)")

// browser starts Debian's headless Chromium, kept off the network: no
// background requests, no component updates, a profile of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, b := range []string{"chromium", "chromium-headless-shell"} {
		if p, err := exec.LookPath(b); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Fatal("no headless Chromium: run `make test`, whose scripts/setup installs Debian's chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// TestReviewerPage: in real headless Chromium a reviewer signs in with a
// token, sees the verdict in the list, opens it, sees its findings by
// severity with their evidence, approves it, and the API then answers with
// the decision. A read token sees the page but no form.
func TestReviewerPage(t *testing.T) {
	h := newHarness(t, options{allowLocal: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand-1.0.1"), rootLine+evilLine)
	j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
	if j.State != gate.StateDone || len(j.Verdicts) != 1 {
		t.Fatalf("job = %+v", j)
	}
	got := j.Verdicts[0]
	ctx := browser(t)

	text := func(sel chromedp.ID) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("reading %s: %v\nlog:\n%s", sel, err, h.logs)
		}
		return v
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(h.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), h.review),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("verdicts")),
	)
	if err != nil {
		t.Fatalf("signing in: %v\nlog:\n%s", err, h.logs)
	}
	list := text("verdicts")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(fmt.Sprintf("verdict-%d", got.ReportID))), chromedp.WaitVisible(chromedp.ID("decide"))); err != nil {
		t.Fatalf("opening the verdict: %v\nlog:\n%s", err, h.logs)
	}
	computed := text("computed")
	findings, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, "FAIL") || !strings.Contains(list, "cand-1.0.1") || !strings.Contains(list, "waiting") {
		t.Errorf("the list does not show the verdict waiting for a decision:\n%s", list)
	}
	if computed != "FAIL" || !strings.Contains(findings, "CRITICAL") || !strings.Contains(findings, "account-added") || !strings.Contains(findings, `"user": "backdoor"`) {
		t.Errorf("the verdict page lacks the verdict, the severity group or the evidence:\n%s", findings)
	}
	if *screenshot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("by"), "alice@example.com"),
		chromedp.SendKeys(chromedp.ID("reason"), "backdoor is the vendor's documented support login (ticket 4711)"),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("decided")),
	)
	if err != nil {
		t.Fatalf("approving: %v\nlog:\n%s", err, h.logs)
	}
	if decided, decision := text("decided"), text("decision"); decided != "PASS" || !strings.Contains(decision, "alice@example.com") {
		t.Errorf("after approving: decided %q, decision %q", decided, decision)
	}
	v := h.verdict(got.Digest, h.read)
	if v.State != gate.StateDone || v.Verdict != pipeline.VerdictFail || v.Decision == nil || !v.Decision.Approve || v.Decision.By != "alice@example.com" {
		t.Errorf("the API after the page's approval = %+v", v)
	}

	// A read token: the page, but no form.
	ctx2 := browser(t)
	err = chromedp.Do(ctx2,
		chromedp.Navigate(h.srv.URL+"/"),
		chromedp.SendKeys(chromedp.ID("token"), h.read),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("verdicts")),
		chromedp.Navigate(fmt.Sprintf("%s/verdicts/%d", h.srv.URL, got.ReportID)),
		chromedp.WaitVisible(chromedp.ID("computed")),
	)
	if err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(ctx2, chromedp.OuterHTML(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, `id="decide"`) {
		t.Error("a read token is shown the decision form")
	}
}

// TestReviewerPageRefuses: without a session the page only offers the
// sign-in; a bad token is refused; a decision posted without the session's
// form token (another site's form) or by a read token is refused.
func TestReviewerPageRefuses(t *testing.T) {
	h := newHarness(t, options{allowLocal: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
	id := j.Verdicts[0].ReportID
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := noRedirect.Get(fmt.Sprintf("%s/verdicts/%d", h.srv.URL, id))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a verdict page without a session = %d, want a redirect to the sign-in", resp.StatusCode)
	}
	resp, err = noRedirect.PostForm(h.srv.URL+"/login", url.Values{"token": {"fwvet_not-a-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(h.logs.String(), "page sign-in with an unknown or revoked token") {
		t.Errorf("sign-in with a bad token = %d, want 401 and a log line", resp.StatusCode)
	}
	post := func(token, csrf string) int {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/verdicts/%d/decide", h.srv.URL, id),
			strings.NewReader(url.Values{"csrf": {csrf}, "action": {"approve"}, "by": {"mallory"}, "reason": {"r"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "fwvet_token", Value: token})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(h.review, "forged"); code != http.StatusForbidden {
		t.Errorf("a decision without the session's form token = %d, want 403", code)
	}
	if code := post(h.read, gate.FormToken(h.read)); code != http.StatusForbidden {
		t.Errorf("a decision by a read token = %d, want 403", code)
	}
	if d, err := h.st.Decision(context.Background(), id); err != nil || d != nil {
		t.Errorf("a refused form recorded a decision: %+v, %v", d, err)
	}
	if code := post(h.review, gate.FormToken(h.review)); code != http.StatusSeeOther {
		t.Errorf("a reviewer's decision = %d, want a redirect to the verdict", code)
	}
	if d, err := h.st.Decision(context.Background(), id); err != nil || d == nil || d.By != "mallory" {
		t.Errorf("the reviewer's decision was not recorded: %+v, %v", d, err)
	}
}
