package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeWebhookURL: --rollout-webhook-file gives the URL from its first
// line (out of the process list); an empty file or both flags are refused
// without quoting a URL.
func TestServeWebhookURL(t *testing.T) {
	f := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(f, []byte("https://hooks.example.org/T0k3n?x=1\n# comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &serveOptions{rolloutWebhookFile: f}
	if u, err := o.webhookURL(); err != nil || u != "https://hooks.example.org/T0k3n?x=1" {
		t.Errorf("from the file: %q, %v", u, err)
	}
	o.rolloutWebhook = "https://other.example.org/S3cret"
	if _, err := o.webhookURL(); err == nil || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("both flags: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := (&serveOptions{rolloutWebhookFile: empty}).webhookURL(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty file: %v", err)
	}
	if u, err := (&serveOptions{rolloutWebhook: "http://127.0.0.1:9/x"}).webhookURL(); err != nil || u != "http://127.0.0.1:9/x" {
		t.Errorf("the flag: %q, %v", u, err)
	}
}
