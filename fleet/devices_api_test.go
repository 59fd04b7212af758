package fleet

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

func startDevicesAPI(t *testing.T) (*Store, *DevicesClient, *http.Header) {
	t.Helper()
	s := openTestStore(t, StoreOptions{Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }})
	mux := http.NewServeMux()
	for p, h := range DevicesAPIHandlers(s) {
		mux.Handle(p, h)
	}
	var last http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = r.Header.Clone()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return s, &DevicesClient{Base: srv.URL + "/", Token: "tok", HTTP: srv.Client()}, &last
}

func TestDevicesAPI(t *testing.T) {
	ctx := context.Background()
	s, c, hdr := startDevicesAPI(t)

	issued, err := c.IssueCredentials(ctx, RoleDevice, "lamp0", "lamp1")
	if err != nil {
		t.Fatal(err)
	}
	if got := (*hdr).Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization %q", got)
	}
	if len(issued) != 2 || issued[0].ID != "lamp0" || issued[1].Role != RoleDevice || len(issued[1].Secret) != 43 {
		t.Fatalf("issued %+v", issued)
	}
	if role, ok := s.Authenticate("lamp1", issued[1].Secret); !ok || role != RoleDevice {
		t.Fatalf("issued secret does not log in: %q %v", role, ok)
	}
	if _, ok := s.Authenticate("lamp1", issued[0].Secret); ok {
		t.Fatal("lamp0's secret logs in as lamp1")
	}
	col, err := c.IssueCredentials(ctx, RoleCollector, "col1")
	if err != nil || col[0].Role != RoleCollector {
		t.Fatalf("collector: %+v %v", col, err)
	}

	// All or none: lamp2 is not issued when lamp1 exists.
	_, err = c.IssueCredentials(ctx, RoleDevice, "lamp2", "lamp1")
	var ae *DevicesAPIError
	if !errors.Is(err, ErrExists) || !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, `"lamp1"`) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []struct {
		role string
		ids  []string
	}{{RoleDevice, []string{"a/b"}}, {RoleDevice, []string{"ok", "../x"}}, {"admin", []string{"x"}}, {RoleDevice, nil}} {
		_, err := c.IssueCredentials(ctx, bad.role, bad.ids...)
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "bad_request" {
			t.Errorf("Add(%q, %q) = %v, want 400", bad.role, bad.ids, err)
		}
	}

	creds, err := c.Credentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, cr := range creds {
		ids = append(ids, cr.ID)
		if cr.Hash != nil || cr.Salt != nil {
			t.Errorf("list shows %s's hash or salt", cr.ID)
		}
	}
	if strings.Join(ids, ",") != "col1,lamp0,lamp1" {
		t.Fatalf("list %v", ids)
	}

	if err := c.RemoveCredential(ctx, "lamp1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate("lamp1", issued[1].Secret); ok {
		t.Fatal("removed credential still logs in")
	}
	if err := c.RemoveCredential(ctx, "lamp1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove again: %v, want ErrNotFound", err)
	}
	if err := c.RemoveCredential(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove a/b: %v, want ErrNotFound", err)
	}
}

func TestDevicesAPIBadBody(t *testing.T) {
	_, c, _ := startDevicesAPI(t)
	for _, body := range []string{"", "{", `{"ids":["x"],"extra":1}`, `["x"]`} {
		resp, err := http.Post(strings.TrimSuffix(c.Base, "/")+DevicesAPIPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, resp.StatusCode)
		}
	}
}

// TestDevicesAPIReset: POST /api/v1/fleet/reset forgets a pinned device's
// seq (DevicesClient.ResetSeq); an unknown id is a 404 and resets nothing.
func TestDevicesAPIReset(t *testing.T) {
	ctx := context.Background()
	s, c, _ := startDevicesAPI(t)
	pinBeforeTheFix(t, s, "lampP", 1<<63, "6.6.6")
	next := stateMsg(t, "lampP", state.State{Seq: usAt(t0), Time: t0, Device: "lampP"}, t0)
	if err := c.ResetSeq(ctx, "lampP", "nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("reset of an unknown device: %v", err)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []Message{next}); out[0] != OutcomeStale {
		t.Fatal("a refused reset changed the device")
	}
	if err := c.ResetSeq(ctx, "lampP"); err != nil {
		t.Fatal(err)
	}
	if out, _ := s.Apply(state.DefaultPrefix, []Message{next}); out[0] != OutcomeStored {
		t.Errorf("report after the reset: outcome %d", out[0])
	}
	if err := c.ResetSeq(ctx); err == nil {
		t.Error("reset of no device accepted")
	}
}
