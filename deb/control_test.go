package deb_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

func TestParseControlRoundTrip(t *testing.T) {
	in := "Package: hi\nVersion: 0.1\nArchitecture: all\nMaintainer: A <a@example.org>\n" +
		"Description: the synopsis\n Long text.\n .\n\tTabbed line.\nX-Custom:value without space\n"
	p, err := deb.ParseControl(strings.NewReader("\n\n"+in+"\n"), "control")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Get("description"); got != "the synopsis\n Long text.\n .\n\tTabbed line." {
		t.Errorf("Description = %q", got)
	}
	if f, _ := p.Field("Version"); f.Line != 4 {
		t.Errorf("Version at line %d, want 4", f.Line)
	}
	want := strings.Replace(in, "X-Custom:value", "X-Custom: value", 1)
	if p.String() != want {
		t.Errorf("round trip:\n%s\nwant:\n%s", p.String(), want)
	}
	p.SetAfter("Architecture", "Installed-Size", "5")
	p.Set("Version", "0.2")
	p.Delete("X-Custom")
	if got := p.String(); !strings.HasPrefix(got, "Package: hi\nVersion: 0.2\nArchitecture: all\nInstalled-Size: 5\nMaintainer:") || strings.Contains(got, "X-Custom") {
		t.Errorf("after edits:\n%s", got)
	}
}

func TestParseParagraphs(t *testing.T) {
	ps, err := deb.ParseParagraphs(strings.NewReader("Package: a\nVersion: 1\n\n\nPackage: b\nVersion: 2\n"), "Packages")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[1].Get("Package") != "b" || ps[1].Fields[0].Line != 5 {
		t.Fatalf("got %d paragraphs: %+v", len(ps), ps)
	}
	if _, err := deb.ParseControl(strings.NewReader(""), "control"); !errors.Is(err, deb.ErrSyntax) {
		t.Errorf("empty control: %v", err)
	}
}

// FuzzParseControl: the parser never panics; what it accepts, it writes
// back in a form it parses again to the same fields.
func FuzzParseControl(f *testing.F) {
	f.Add([]byte("Package: hi\nVersion: 0.1\nDescription: x\n y\n .\n"))
	f.Add([]byte("\n\nA: b\n\nC: d\n"))
	f.Add([]byte("A:\n b\n"))
	f.Add([]byte(" x\n"))
	f.Add([]byte("A: b\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := deb.ParseParagraphs(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !errors.Is(err, deb.ErrSyntax) && !strings.Contains(err.Error(), "read fuzz") {
				t.Fatalf("error does not wrap ErrSyntax: %v", err)
			}
			return
		}
		for _, p := range ps {
			all, err := deb.ParseParagraphs(strings.NewReader(p.String()), "again")
			if err != nil || len(all) != 1 {
				t.Fatalf("cannot re-parse %q as one paragraph: %v", p.String(), err)
			}
			again := all[0]
			if len(again.Fields) != len(p.Fields) {
				t.Fatalf("re-parse changed the fields: %q", p.String())
			}
			for i, f := range p.Fields {
				if again.Fields[i].Name != f.Name || again.Fields[i].Value != f.Value {
					t.Fatalf("field %d: %q=%q became %q=%q", i, f.Name, f.Value, again.Fields[i].Name, again.Fields[i].Value)
				}
			}
		}
	})
}
