package repo

// Lookup returns the distribution that name names: the one with that
// Codename, else the first (in file order) with that Suite, else nil.
// Commands of reprepro take codenames only ([Config.Distribution]); the
// server's upload API and "serve --require-signature" accept either, as
// apt's sources.list does. An empty name names nothing.
func (c *Config) Lookup(name string) *Distribution {
	if name == "" {
		return nil
	}
	for _, d := range c.Distributions {
		if d.Codename == name {
			return d
		}
	}
	for _, d := range c.Distributions {
		if d.Suite == name {
			return d
		}
	}
	return nil
}
