package agent

// Phasing follows apt (apt-pkg/upgrade.cc, IsIgnoredPhasedUpdate, apt ≥ 2.1):
// an installed package's candidate with Phased-Update-Percentage P < 100 is
// held back on this machine when draw > P, where draw is the first value of
//
//	std::seed_seq seed(SOURCE + "-" + SOURCEVERSION + "-" + MACHINEID)
//	std::minstd_rand rand(seed)
//	std::uniform_int_distribution<unsigned int>(0, 100)(rand)
//
// with SOURCE and SOURCEVERSION the source package (the binary's own name
// and version when the stanza has no Source field) and MACHINEID the
// content of /etc/machine-id. apt skips phasing when there is no machine
// id, in a chroot, or with SOURCE_DATE_EPOCH set; the agent only skips it
// without a machine id. The draw is 0–100 inclusive, so 0 % still lets the
// machines that draw 0 through, as apt does. PhaseDraw reproduces the
// libstdc++ algorithms bit for bit (seed_seq::generate, the
// linear_congruential_engine seeding rule, and uniform_int_distribution's
// downscaling loop), so a device running apt and lampi-agent falls in the
// same cohort.

// PhaseDraw is apt's phasing draw (0–100) for a source package version on
// the machine with the given machine id.
func PhaseDraw(source, sourceVersion, machineID string) uint32 {
	seed := source + "-" + sourceVersion + "-" + machineID
	// seed_seq::generate for the 4 words minstd_rand's seeding asks for
	// (k = ceil(log2(m)/32) = 1, k+3 = 4 words).
	const n = 4
	var b [n]uint32
	for i := range b {
		b[i] = 0x8b8b8b8b
	}
	s := uint32(len(seed))
	t := uint32(1) // (n-1)/2 for n < 7
	p := (n - t) / 2
	q := p + t
	m := s + 1
	if m < n {
		m = n
	}
	T := func(x uint32) uint32 { return x ^ (x >> 27) }
	for k := uint32(0); k < m; k++ {
		r1 := 1664525 * T(b[k%n]^b[(k+p)%n]^b[(k+n-1)%n])
		var r2 uint32
		switch {
		case k == 0:
			r2 = r1 + s
		case k <= s:
			// char converted to uint32: sign-extended for bytes ≥ 0x80 on
			// platforms with signed char (x86), as libstdc++ on amd64.
			r2 = r1 + k%n + uint32(int32(int8(seed[k-1])))
		default:
			r2 = r1 + k%n
		}
		b[(k+p)%n] += r1
		b[(k+q)%n] += r2
		b[k%n] = r2
	}
	for k := m; k < m+n; k++ {
		r3 := 1566083941 * T(b[k%n]+b[(k+p)%n]+b[(k+n-1)%n])
		r4 := r3 - k%n
		b[(k+p)%n] ^= r3
		b[(k+q)%n] ^= r4
		b[k%n] = r4
	}
	// minstd_rand: x' = 48271·x mod (2^31−1); seeded with a[3] mod m (1 if 0).
	const mod = 2147483647
	x := uint64(b[3]) % mod
	if x == 0 {
		x = 1
	}
	next := func() uint64 {
		x = x * 48271 % mod
		return x
	}
	// uniform_int_distribution(0, 100): engine range [1, 2^31−2].
	const urngRange = mod - 2 // max − min
	const uerange = 101
	const scaling = urngRange / uerange
	const past = uerange * scaling
	for {
		r := next() - 1
		if r < past {
			return uint32(r / scaling)
		}
	}
}

// PhasedOut reports whether the candidate is held back on this machine by
// its Phased-Update-Percentage.
func PhasedOut(c Candidate, machineID string) bool {
	if c.Phased < 0 || c.Phased >= 100 || machineID == "" {
		return false
	}
	return PhaseDraw(c.Source, c.SourceVersion, machineID) > uint32(c.Phased)
}
