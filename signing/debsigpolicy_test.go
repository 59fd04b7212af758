package signing

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestDebsigPolicy checks the policy files themselves, and that
// debsig-verify reads a policy with a custom name and a description full
// of XML metacharacters.
func TestDebsigPolicy(t *testing.T) {
	testutil.Heavy(t, "runs the real debsig-verify with a generated policy")
	t.Parallel()
	key := readFixture(t, "other.sec.asc")
	pub := roundTrip(t, key, false, true)
	desc := `Fleet "prod" <ops&releases>`
	p, err := NewDebsigPolicy(pub, DebsigPolicyOptions{Name: "fleet.prod", Description: desc, Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID != key.KeyID() || p.Fingerprint != key.Fingerprint() ||
		p.PolicyFile() != filepath.Join(key.KeyID(), "fleet.prod.pol") || p.KeyringFile() != filepath.Join(key.KeyID(), "fleet.prod.gpg") {
		t.Errorf("policy %+v", p)
	}
	var doc struct {
		XMLName xml.Name `xml:"https://www.debian.org/debsig/1.0/ Policy"`
		Origin  struct {
			Name        string `xml:"Name,attr"`
			ID          string `xml:"id,attr"`
			Description string `xml:"Description,attr"`
		}
		Selection    policyGroup
		Verification policyGroup
	}
	if err := xml.Unmarshal(p.Policy, &doc); err != nil {
		t.Fatalf("policy is not XML: %v\n%s", err, p.Policy)
	}
	if doc.Origin.Name != "fleet.prod" || doc.Origin.ID != key.Fingerprint() || doc.Origin.Description != desc {
		t.Errorf("origin %+v", doc.Origin)
	}
	want := policyRule{Type: "origin", File: "fleet.prod.gpg", ID: key.Fingerprint()}
	for _, g := range []policyGroup{doc.Selection, doc.Verification} {
		if len(g.Required) != 1 || g.Required[0] != want {
			t.Errorf("rules %+v, want one %+v", g, want)
		}
	}
	if doc.Verification.MinOptional != "0" {
		t.Errorf("Verification MinOptional %q", doc.Verification.MinOptional)
	}
	kr, err := ReadKeyring(bytes.NewReader(p.Keyring))
	if err != nil || len(kr.Keys()) != 1 || kr.Keys()[0].IsSecret() || kr.Keys()[0].Fingerprint() != key.Fingerprint() {
		t.Errorf("keyring: %v", err)
	}

	// The real debsig-verify, with separate policies and keyrings dirs.
	dir := t.TempDir()
	pols, krs := filepath.Join(dir, "pol"), filepath.Join(dir, "kr")
	polPath, krPath, err := p.Write(pols, krs)
	if err != nil {
		t.Fatal(err)
	}
	if polPath != filepath.Join(pols, p.PolicyFile()) || krPath != filepath.Join(krs, p.KeyringFile()) {
		t.Errorf("paths %s %s", polPath, krPath)
	}
	for _, f := range []string{polPath, krPath} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v", f, err)
		}
	}
	pkg := writeTemp(t, dir, "hi.deb", buildHi(t, deb.CompressGzip))
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), pkg); err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(trust, "etc/debsig"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pols, filepath.Join(trust, DebsigPoliciesDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(trust, "usr/share/debsig"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(krs, filepath.Join(trust, DebsigKeyringsDir)); err != nil {
		t.Fatal(err)
	}
	if code, out := debsigVerify(t, trust, pkg); code != 0 {
		t.Errorf("debsig-verify: exit %d\n%s", code, out)
	}
	// Written again (a key rotation script run twice): same files.
	if _, _, err := p.Install(trust); err != nil {
		t.Fatal(err)
	}
	if code, out := debsigVerify(t, trust, pkg); code != 0 {
		t.Errorf("debsig-verify after Install: exit %d\n%s", code, out)
	}
}

type policyRule struct {
	Type string `xml:"Type,attr"`
	File string `xml:"File,attr"`
	ID   string `xml:"id,attr"`
}

type policyGroup struct {
	MinOptional string       `xml:"MinOptional,attr"`
	Required    []policyRule `xml:"https://www.debian.org/debsig/1.0/ Required"`
}

func TestDebsigPolicyRefuses(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	for _, tc := range []struct {
		name string
		key  *Key
		opt  string
		want error
	}{
		{"subkey signs", readFixture(t, "gpg-subkey.sec.asc"), "", ErrUnsupportedKey},
		{"expired", readFixture(t, "expired.sec.asc"), "", ErrNoSigningKey},
		{"path in name", key, "../evil", nil},
		{"empty after dot", key, ".hidden", nil},
		{"space", key, "a b", nil},
	} {
		_, err := NewDebsigPolicy(tc.key, DebsigPolicyOptions{Name: tc.opt, Now: at(testNow)})
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := NewDebsigPolicy(key, DebsigPolicyOptions{}); err == nil {
		t.Error("no Now: no error")
	}
	p, err := NewDebsigPolicy(key, DebsigPolicyOptions{Now: at(testNow)})
	if err != nil || p.Name != DefaultDebsigPolicyName {
		t.Errorf("default name: %v %+v", err, p)
	}
}
