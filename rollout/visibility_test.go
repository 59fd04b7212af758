package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// secrets are parts of the webhook URL that must never reach a log.
var secrets = []string{"hunter2", "tok-9f8e7d", "sig=abc123"}

// receiver is a real HTTP endpoint on 127.0.0.1 that answers the first
// `fail` requests 503 and stores every body.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail int
	got  []WebhookEvent
	hdrs []http.Header
	ok   chan WebhookEvent
}

func newReceiver(t *testing.T, fail int) *receiver {
	rc := &receiver{fail: fail, ok: make(chan WebhookEvent, 16)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev WebhookEvent
		if err := json.Unmarshal(b, &ev); err != nil || r.Method != http.MethodPost || r.URL.Path != "/hook/tok-9f8e7d" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got, rc.hdrs = append(rc.got, ev), append(rc.hdrs, r.Header.Clone())
		failing := rc.fail > 0
		rc.fail--
		rc.mu.Unlock()
		if failing {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		rc.ok <- ev
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// url is the receiver's address with secrets in the user info, the path
// and the query.
func (rc *receiver) url() string {
	return strings.Replace(rc.srv.URL, "http://", "http://ops:hunter2@", 1) + "/hook/tok-9f8e7d?sig=abc123"
}

func (rc *receiver) wait(t *testing.T) WebhookEvent {
	t.Helper()
	select {
	case ev := <-rc.ok:
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("the webhook receiver got nothing")
		return WebhookEvent{}
	}
}

// logLines collects log lines, for the check that no secret is written.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
}

func (l *logLines) check(t *testing.T) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	all := strings.Join(l.lines, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a log line holds the secret %q:\n%s", s, all)
		}
	}
	return all
}

// TestRolloutVisibility: a controller over the real repository and fleet
// store, with a webhook to a real receiver on 127.0.0.1 and a Watch. The
// completion of a rollout reaches the receiver although its first try
// is answered 503 (retried, same id); a halt on failures reaches it too.
// The metrics and views show the halted rollout with the numbers of its
// latest evaluation; no log line holds the URL's secrets.
func TestRolloutVisibility(t *testing.T) {
	t.Parallel()
	testutil.Heavy(t, "publishes a real repository several times")
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc := newReceiver(t, 1)
	var logs logLines
	hook, err := NewWebhook(WebhookOptions{URL: rc.url(), Backoff: 50 * time.Millisecond, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	go hook.Run(ctx)
	watch := &Watch{}
	w.c.OnDecision = func(r Rollout, d Decision) {
		watch.Observe(r, d)
		hook.Notify(r, d)
	}

	// A one-step rollout completes at the first tick.
	plan, _ := ParsePlan("100%")
	if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(time.Minute)
	if ds := w.tick(); len(ds) != 1 || ds[0].Action != Complete {
		t.Fatalf("tick: %+v", ds)
	}
	ev := rc.wait(t)
	if ev.Event != Complete || ev.Rollout != "bookworm/hi/0.2" || ev.State != Completed || ev.Percent != 100 {
		t.Errorf("completion event %+v", ev)
	}
	rc.mu.Lock()
	if len(rc.got) != 2 || rc.got[0].ID != rc.got[1].ID || rc.hdrs[1].Get("X-Lampi-Event") != "complete" {
		t.Errorf("want one 503'd try and its retry with the same id, got %+v", rc.got)
	}
	rc.mu.Unlock()

	// Again, and three devices fail: halt.
	plan, _ = ParsePlan("50%:1h/3,100%")
	if _, err := w.c.Start(ctx, Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		w.report(id, "0.1", nil, &state.Attempt{Version: "0.2", Result: state.ResultRolledBack, Health: state.HealthFailed, Time: w.now})
	}
	w.report("d", "0.1", &state.Candidate{Version: "0.2", Phased: 50, Eligible: true, Checks: 1}, nil)
	w.now = w.now.Add(time.Minute)
	if ds := w.tick(); len(ds) != 1 || ds[0].Action != Halt || w.phase() != "0" {
		t.Fatalf("tick: %+v, published %s", ds, w.phase())
	}
	ev = rc.wait(t)
	if ev.Event != Halt || ev.State != Halted || ev.Percent != 0 || ev.Stats.Failed != 3 || !strings.Contains(ev.Reason, "min-failures") {
		t.Errorf("halt event %+v", ev)
	}

	views, err := watch.Views(ctx, w.c.Store, 3)
	if err != nil || len(views) != 1 {
		t.Fatalf("views %+v, %v", views, err)
	}
	v := views[0]
	if v.Stage != "halted" || v.Stats.Failed != 3 || v.Stats.Eligible != 1 || len(v.Log) != 2 || v.Log[1].Action != Halt {
		t.Errorf("view %+v", v)
	}
	var b bytes.Buffer
	if err := WriteMetrics(&b, views); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`lampi_rollouts{state="halted"} 1`,
		`lampi_rollout_halted{rollout="bookworm/hi/0.2"} 1`,
		`lampi_rollout_percent{rollout="bookworm/hi/0.2"} 0`,
		`lampi_rollout_devices{rollout="bookworm/hi/0.2",kind="failed"} 3`,
		`lampi_rollout_devices{rollout="bookworm/hi/0.2",kind="eligible"} 1`,
		`lampi_rollout_step{rollout="bookworm/hi/0.2",stage="halted"} 0`,
		fmt.Sprintf(`lampi_rollout_evaluated_timestamp_seconds{rollout="bookworm/hi/0.2"} %d`, w.now.Unix()),
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
	// After a restart (a new Watch) the numbers come from the audit log.
	if views, err := (&Watch{}).Views(ctx, w.c.Store, 0); err != nil || views[0].Stats.Failed != 3 || views[0].Log != nil {
		t.Errorf("views from the log: %+v, %v", views, err)
	}
	// The receiver has the event before the webhook has its answer.
	deadline := time.Now().Add(time.Minute)
	for sent, _, _ := hook.Counts(); sent < 2 && time.Now().Before(deadline); sent, _, _ = hook.Counts() {
		time.Sleep(10 * time.Millisecond)
	}
	if sent, failed, dropped := hook.Counts(); sent != 2 || failed != 0 || dropped != 0 {
		t.Errorf("webhook counts: sent %d, failed %d, dropped %d", sent, failed, dropped)
	}
	all := logs.check(t)
	if !strings.Contains(all, "503") || !strings.Contains(all, "http://127.0.0.1:") {
		t.Errorf("the failed try is not logged with the redacted address:\n%s", all)
	}
}

// TestWebhookNeverBlocks: the receiver hangs; Notify still returns at
// once, drops what does not fit in the queue and says so, and a receiver
// that is gone is given up after the attempts — without a secret in the
// logs.
func TestWebhookNeverBlocks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer once.Do(func() { close(release) })
	var logs logLines
	u := strings.Replace(hang.URL, "http://", "http://ops:hunter2@", 1) + "/hook/tok-9f8e7d?sig=abc123"
	hook, err := NewWebhook(WebhookOptions{URL: u, Queue: 1, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hook.Run(ctx)
	r := Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", State: Halted}
	for i := range 5 {
		hook.Notify(r, Decision{Action: Halt, Time: time.Unix(int64(i), 0)})
	}
	hook.Notify(r, Decision{Action: Hold}) // not an event
	if _, _, dropped := hook.Counts(); dropped < 3 {
		t.Errorf("%d events dropped, want at least 3 of 5 with a queue of 1 and a hanging receiver", dropped)
	}
	once.Do(func() { close(release) })

	// A receiver that is gone: connection refused, given up after 2 tries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	gone, err := NewWebhook(WebhookOptions{URL: "https://ops:hunter2@" + addr + "/hook/tok-9f8e7d?sig=abc123", Attempts: 2, Backoff: time.Millisecond, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	go gone.Run(ctx)
	gone.Notify(r, Decision{Action: Complete})
	deadline := time.Now().Add(time.Minute)
	for _, failed, _ := gone.Counts(); failed == 0; _, failed, _ = gone.Counts() {
		if time.Now().After(deadline) {
			t.Fatal("the delivery to a closed port never gave up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	all := logs.check(t)
	if !strings.Contains(all, "not delivered after 2 tries") || !strings.Contains(all, "https://"+addr+"/…") {
		t.Errorf("logs:\n%s", all)
	}
	if _, err := NewWebhook(WebhookOptions{URL: "ftp://ops:hunter2@example.org/x"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL: %v", err)
	}
}
