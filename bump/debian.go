package bump

import (
	"bytes"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// The Debian parts that Next understands.
const (
	Major    = "major"
	Minor    = "minor"
	Patch    = "patch"
	Revision = "revision"
	Pre      = "pre"
	Final    = "final"
)

// DebianParts lists the parts Next steps, in the order "bump --help" shows.
var DebianParts = []string{Major, Minor, Patch, Revision, Pre, Final}

// upstreamShape splits an upstream version into its dotted numbers, a
// "~label[N]" pre-release and whatever follows ("+dfsg", "a", …).
var upstreamShape = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)*)(~[A-Za-z]*[0-9]*)?(.*)$`)

// Next returns the version after v for a Debian part:
//
//   - major, minor, patch: count up the first, second or third number of
//     the upstream version, set the numbers after it to 0 and keep at least
//     as many numbers as before (0.1 → patch 0.1.1, minor 0.2, major 1.0).
//     On a pre-release that the step would release (all numbers after the
//     part are 0), the pre-release is dropped instead: 1.3.0~rc2 → minor
//     1.3.0, 1.2.4~rc1 → patch 1.2.4. Other pre-releases are dropped too.
//   - pre: count up the pre-release number (1.2.4~rc1 → 1.2.4~rc2, ~rc →
//     ~rc1); on a final version start the next patch's first release
//     candidate (1.2.3 → 1.2.4~rc1), since 1.2.3~rc1 sorts before 1.2.3.
//   - final: drop the pre-release (1.2.4~rc2 → 1.2.4).
//   - revision: count up the last number of the Debian revision
//     (1.2-1 → 1.2-2, 1.2-0ubuntu1 → 1.2-0ubuntu2); a native version gets
//     revision 1 (1.2 → 1.2-1).
//
// The epoch is always kept. When the upstream version changes, a Debian
// revision is reset to 1; a native version stays native. Whatever follows
// the numbers and pre-release ("+dfsg") is kept. The result sorts after v
// in dpkg's order, or Next fails with ErrOrder.
func Next(v deb.Version, part string) (deb.Version, error) {
	nv := v
	if part == Revision {
		nv.Revision = bumpLastNumber(v.Revision)
		return checkOrder(v, nv)
	}
	m := upstreamShape.FindStringSubmatch(v.Upstream)
	if m == nil {
		return deb.Version{}, fmt.Errorf("%w: upstream version %q does not start with numbers (such as 1.2.3) that %s could count up: give --new-version", ErrPart, v.Upstream, part)
	}
	nums, pre, rest := strings.Split(m[1], "."), m[2], m[3]
	switch part {
	case Major, Minor, Patch:
		idx := map[string]int{Major: 0, Minor: 1, Patch: 2}[part]
		for len(nums) <= idx {
			nums = append(nums, "0")
		}
		if pre == "" || !allZero(nums[idx+1:]) {
			nums[idx] = increment(nums[idx])
			for i := idx + 1; i < len(nums); i++ {
				nums[i] = "0"
			}
		}
		pre = ""
	case Pre:
		if pre == "" {
			for len(nums) < 3 {
				nums = append(nums, "0")
			}
			nums[2] = increment(nums[2])
			pre = "~rc1"
		} else {
			pre = bumpLastNumber(pre)
		}
	case Final:
		if pre == "" {
			return deb.Version{}, fmt.Errorf("%w: %s is not a pre-release (no ~ part), so there is nothing to make final", ErrPart, v)
		}
		pre = ""
	default:
		return deb.Version{}, fmt.Errorf("%w: unknown part %q: use one of %s", ErrPart, part, strings.Join(DebianParts, ", "))
	}
	nv.Upstream = strings.Join(nums, ".") + pre + rest
	if nv.Upstream != v.Upstream && v.Revision != "" {
		nv.Revision = "1"
	}
	return checkOrder(v, nv)
}

func checkOrder(old, nv deb.Version) (deb.Version, error) {
	if _, err := deb.ParseVersion(nv.String()); err != nil {
		return deb.Version{}, fmt.Errorf("%w: %w", ErrVersion, err)
	}
	if nv.Compare(old) <= 0 {
		return deb.Version{}, orderError(old.String(), nv.String())
	}
	return nv, nil
}

func orderError(old, nv string) error {
	return fmt.Errorf("%w: %s does not sort after %s in dpkg's order (check with: dpkg --compare-versions %s gt %s); pre-releases need '~' (1.2.3~rc1 < 1.2.3), while 1.2.3-rc1 is revision rc1 of 1.2.3", ErrOrder, nv, old, nv, old)
}

func allZero(nums []string) bool {
	for _, n := range nums {
		if strings.TrimLeft(n, "0") != "" {
			return false
		}
	}
	return true
}

func increment(n string) string {
	b, _ := new(big.Int).SetString(n, 10)
	return b.Add(b, big.NewInt(1)).String()
}

var lastNumber = regexp.MustCompile(`[0-9]+([^0-9]*)$`)

// bumpLastNumber counts up the last run of digits in s, or appends 1.
func bumpLastNumber(s string) string {
	loc := lastNumber.FindStringSubmatchIndex(s)
	if loc == nil {
		return s + "1"
	}
	end := loc[2]
	return s[:loc[0]] + increment(s[loc[0]:end]) + s[end:]
}

// withUpstream returns the package version that follows pkg when the
// configuration's version goes from cfgOld to cfgNew: the whole version
// when it is the configured one, else the upstream part (epoch kept,
// revision reset to 1) or the part after the epoch.
func withUpstream(pkg deb.Version, cfgOld, cfgNew string) (deb.Version, error) {
	var s string
	switch {
	case pkg.String() == cfgOld:
		s = cfgNew
	case pkg.WithoutEpoch() == cfgOld:
		s = cfgNew
		if pkg.Epoch != 0 {
			s = fmt.Sprintf("%d:%s", pkg.Epoch, cfgNew)
		}
	case pkg.Upstream == cfgOld:
		s = cfgNew
		if pkg.Epoch != 0 {
			s = fmt.Sprintf("%d:%s", pkg.Epoch, s)
		}
		if pkg.Revision != "" && !strings.Contains(cfgNew, "-") {
			s += "-1"
		}
	default:
		return deb.Version{}, fmt.Errorf("%w: DEBIAN/control has Version %s, which is neither current_version %s nor that with an epoch or a revision: make them agree, or list DEBIAN/control in the configuration to rewrite it with search/replace", ErrMismatch, pkg, cfgOld)
	}
	nv, err := deb.ParseVersion(s)
	if err != nil {
		return deb.Version{}, fmt.Errorf("%w: new DEBIAN/control Version: %w", ErrVersion, err)
	}
	return nv, nil
}

// controlVersion finds the Version field of a control file.
func controlVersion(data []byte, name string) (deb.Version, int, error) {
	p, err := deb.ParseControl(bytes.NewReader(data), name)
	if err != nil {
		return deb.Version{}, 0, err
	}
	f, ok := p.Field("Version")
	if !ok {
		return deb.Version{}, 0, fmt.Errorf("%s: %w: no Version field: add one (Version: 0.1)", name, ErrVersion)
	}
	v, err := deb.ParseVersion(f.Value)
	if err != nil {
		return deb.Version{}, 0, fmt.Errorf("%s:%d: %w: %w", name, f.Line, ErrVersion, err)
	}
	return v, f.Line, nil
}

// setControlVersion replaces the value of the Version field on line
// (1-based) and keeps every other byte of the file.
func setControlVersion(data []byte, line int, nv string) []byte {
	start := 0
	for i := 1; i < line; i++ {
		start += bytes.IndexByte(data[start:], '\n') + 1
	}
	end := len(data)
	if k := bytes.IndexByte(data[start:], '\n'); k >= 0 {
		end = start + k
	}
	l := data[start:end]
	colon := bytes.IndexByte(l, ':') + 1
	vs := colon
	for vs < len(l) && (l[vs] == ' ' || l[vs] == '\t') {
		vs++
	}
	ve := len(l)
	for ve > vs && (l[ve-1] == ' ' || l[ve-1] == '\t' || l[ve-1] == '\r') {
		ve--
	}
	out := make([]byte, 0, len(data)+len(nv))
	out = append(out, data[:start+vs]...)
	out = append(out, nv...)
	return append(out, data[start+ve:]...)
}
