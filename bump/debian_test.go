package bump

import (
	"errors"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

func TestNext(t *testing.T) {
	for _, tc := range []struct{ old, part, want string }{
		// the course's two-number versions
		{"0.1", Patch, "0.1.1"},
		{"0.1", Minor, "0.2"},
		{"0.1", Major, "1.0"},
		{"0.1", Revision, "0.1-1"},
		{"0.1", Pre, "0.1.1~rc1"},
		// three numbers stay three
		{"1.2.3", Patch, "1.2.4"},
		{"1.2.3", Minor, "1.3.0"},
		{"1.2.3", Major, "2.0.0"},
		{"1.2.9", Patch, "1.2.10"},
		// epochs stay, revisions reset to 1 when upstream changes
		{"2:1.2.3-4", Minor, "2:1.3.0-1"},
		{"2:1.2.3-4", Revision, "2:1.2.3-5"},
		{"1:0.9-0ubuntu3", Patch, "1:0.9.1-1"},
		{"1.2-0ubuntu3", Revision, "1.2-0ubuntu4"},
		{"1.2-1~bpo11+1", Revision, "1.2-1~bpo11+2"},
		{"1.2-rc", Revision, "1.2-rc1"},
		// the pre-release walk: rc1 → rc2 → final
		{"1.2.3", Pre, "1.2.4~rc1"},
		{"1.2.4~rc1", Pre, "1.2.4~rc2"},
		{"1.2.4~rc2", Final, "1.2.4"},
		{"1.2.4~rc", Pre, "1.2.4~rc1"},
		{"1.2.4~beta9", Pre, "1.2.4~beta10"},
		{"1:1.2.4~rc1-2", Pre, "1:1.2.4~rc2-1"},
		{"1:1.2.4~rc2-2", Final, "1:1.2.4-1"},
		// a step that releases the pre-release drops it
		{"1.2.4~rc2", Patch, "1.2.4"},
		{"1.3.0~rc1", Minor, "1.3.0"},
		{"2.0.0~rc1", Major, "2.0.0"},
		{"1.3.1~rc1", Minor, "1.4.0"},
		{"2.1~rc1", Major, "3.0"},
		// what follows the numbers stays
		{"1.2+dfsg-3", Minor, "1.3+dfsg-1"},
		{"1.2a", Patch, "1.2.1a"},
	} {
		got, err := Next(deb.MustParseVersion(tc.old), tc.part)
		if err != nil {
			t.Errorf("Next(%s, %s): %v", tc.old, tc.part, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("Next(%s, %s) = %s, want %s", tc.old, tc.part, got, tc.want)
		}
		if got.Compare(deb.MustParseVersion(tc.old)) <= 0 {
			t.Errorf("Next(%s, %s) = %s does not sort after", tc.old, tc.part, got)
		}
	}
}

func TestNextRefuses(t *testing.T) {
	for _, tc := range []struct {
		old, part string
		want      error
	}{
		{"1.2.3", Final, ErrPart},
		{"1.2.3", "build", ErrPart},
		{"1.2.3", "", ErrPart},
	} {
		if _, err := Next(deb.MustParseVersion(tc.old), tc.part); !errors.Is(err, tc.want) {
			t.Errorf("Next(%s, %q) = %v, want %v", tc.old, tc.part, err, tc.want)
		}
	}
}

func TestGivenVersion(t *testing.T) {
	for _, tc := range []struct{ old, given, want string }{
		{"0.1", "0.2", "0.2"},
		{"1:1.2-3", "1.3", "1:1.3-1"},
		{"1:1.2-3", "1.2-4", "1:1.2-4"},
		{"1:1.2-3", "2:0.1", "2:0.1-1"},
		{"1.2", "1.3~rc1", "1.3~rc1"},
	} {
		got, err := givenVersion(deb.MustParseVersion(tc.old), tc.given)
		if err != nil || got.String() != tc.want {
			t.Errorf("givenVersion(%s, %s) = %s, %v; want %s", tc.old, tc.given, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ old, given string }{
		{"1.2.3", "1.2.3~rc1"}, // pre-release of the same version sorts before
		{"1.2.3", "1.2.3"},
		{"1:1.2", "0:1.3"}, // an explicit lower epoch
		{"1.2.3-rc1", "1.2.3"},
	} {
		if _, err := givenVersion(deb.MustParseVersion(tc.old), tc.given); !errors.Is(err, ErrOrder) {
			t.Errorf("givenVersion(%s, %s) = %v, want ErrOrder", tc.old, tc.given, err)
		}
	}
	if _, err := givenVersion(deb.MustParseVersion("1.0"), "v2"); !errors.Is(err, ErrVersion) {
		t.Errorf("givenVersion(1.0, v2) = %v, want ErrVersion", err)
	}
}

func TestSetControlVersionKeepsOtherBytes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Package: hi\nVersion: 0.1\nArchitecture: all\n", "Package: hi\nVersion: 0.2\nArchitecture: all\n"},
		{"Package: hi\nversion:\t0.1  \nArchitecture: all\nDescription: x\n y\n", "Package: hi\nversion:\t0.2  \nArchitecture: all\nDescription: x\n y\n"},
		{"Package: hi\nVersion:0.1\n", "Package: hi\nVersion:0.2\n"},
	} {
		_, line, err := controlVersion([]byte(tc.in), "control")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(setControlVersion([]byte(tc.in), line, "0.2")); got != tc.want {
			t.Errorf("setControlVersion(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWithUpstream(t *testing.T) {
	for _, tc := range []struct{ pkg, old, nv, want string }{
		{"0.1", "0.1", "0.2", "0.2"},
		{"1:0.1-3", "0.1", "0.2", "1:0.2-1"},
		{"1:0.1-3", "0.1-3", "0.1-4", "1:0.1-4"},
		{"1:0.1-3", "1:0.1-3", "1:0.2-1", "1:0.2-1"},
		{"0.1-3", "0.1", "0.2-2", "0.2-2"},
	} {
		got, err := withUpstream(deb.MustParseVersion(tc.pkg), tc.old, tc.nv)
		if err != nil || got.String() != tc.want {
			t.Errorf("withUpstream(%s, %s → %s) = %s, %v; want %s", tc.pkg, tc.old, tc.nv, got, err, tc.want)
		}
	}
	if _, err := withUpstream(deb.MustParseVersion("0.2"), "0.1", "0.3"); !errors.Is(err, ErrMismatch) {
		t.Errorf("withUpstream with a different version = %v, want ErrMismatch", err)
	}
}
