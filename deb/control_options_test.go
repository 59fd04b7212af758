package deb

import (
	"errors"
	"strings"
	"testing"
)

func TestParseParagraphsOptions(t *testing.T) {
	in := "# a sources file\nTypes: deb\n# between fields\nSigned-By:\n -----BEGIN\n# inside a value\n .\n -----END\r\n\r\n#\nTypes: deb\nURIs: x"
	ps, err := ParseParagraphsOptions(strings.NewReader(in), "f.sources", ParseOptions{Comments: true, Tolerant: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Get("Signed-By") != "\n -----BEGIN\n .\n -----END" || ps[1].Get("URIs") != "x" {
		t.Fatalf("%d paragraphs: %q", len(ps), ps)
	}
	if f, _ := ps[1].Field("Types"); f.Line != 11 {
		t.Errorf("Types of the second paragraph at line %d, want 11", f.Line)
	}
	for _, c := range []struct {
		in   string
		opts ParseOptions
		want string
	}{
		{"# c\nA: b\n", ParseOptions{}, "f:1:"},
		{"A: b\r\n", ParseOptions{Comments: true}, "carriage return"},
		{"A: b", ParseOptions{Comments: true}, "does not end with a newline"},
		{"A: b\n\r\n", ParseOptions{Tolerant: true}, ""},
		{" #x\n", ParseOptions{Comments: true}, "continuation line"},
		{"A: b\nA: c\n", ParseOptions{Comments: true, Tolerant: true}, "duplicate field"},
	} {
		_, err := ParseParagraphsOptions(strings.NewReader(c.in), "f", c.opts)
		if c.want == "" {
			if err != nil {
				t.Errorf("%q %+v: %v", c.in, c.opts, err)
			}
			continue
		}
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %+v: %v, want %q", c.in, c.opts, err, c.want)
		}
	}
}
