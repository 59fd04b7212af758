package deb

import "testing"

// FuzzParseVersion checks that ParseVersion never panics, that String
// gives back an equal version, and that Compare is a consistent order.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"1.0", "1:2.0~rc1-3", "1.0-a-b", "0:2:3", " 1.0 ", "+1:1", "-0:1", "\n1:0",
		"1.00000000000000000000000000001", "1.0~~a", "2147483647:1", "2147483648:1",
		"1.0-", ":1", "a1", "1_0", "1:2-3:4", "", "1é",
	} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA != nil {
			return
		}
		back, err := ParseVersion(va.String())
		if err != nil {
			t.Fatalf("ParseVersion(%q) = %#v, but its String() %q does not parse: %v", a, va, va.String(), err)
		}
		if back != va || back.Compare(va) != 0 {
			t.Fatalf("ParseVersion(%q) = %#v, String() %q parses to %#v", a, va, va.String(), back)
		}
		if c := va.Compare(va); c != 0 {
			t.Fatalf("Compare(%q, itself) = %d", a, c)
		}
		if errB != nil {
			return
		}
		if ab, ba := va.Compare(vb), vb.Compare(va); ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
	})
}
