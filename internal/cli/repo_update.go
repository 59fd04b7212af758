package cli

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

type repoUpdateOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	keyrings  []string
	timeout   time.Duration
	check     bool
	json      bool
}

// updateFlags adds reprepro's --skipold and --noskipold to the repo
// command's global flags. lampi-pkg always reads the upstream's lists
// afresh (what --noskipold asks), so both are accepted and change
// nothing: the result is the same, only slower than reprepro's skip.
func updateFlags(f *pflag.FlagSet) {
	f.Bool("noskipold", false, "update: process every upstream list (lampi-pkg always does)")
	f.Bool("skipold", false, "update: accepted for reprepro scripts; lampi-pkg processes every list anyway")
}

func newRepoUpdateCmd(env *Env, ro *repoOptions, check bool, runF runFunc[repoUpdateOptions]) *cobra.Command {
	o := &repoUpdateOptions{env: env, repo: ro, check: check}
	verb, short := "update", "Mirror packages from the upstreams conf/updates names, verifying their signatures"
	if check {
		verb, short = "checkupdate", "Show what update would fetch, changing nothing"
	}
	cmd := &cobra.Command{
		Use:   verb + " [CODENAME…]",
		Short: short,
		Long: `Mirror packages into the distributions named (all with an Update field when
none is), as reprepro's update does: each word of a distribution's Update
field names a paragraph of conf/updates (Name, Method, Suite, Components,
Architectures, VerifyRelease, GetInRelease, FilterFormula, FilterList,
From; other fields are refused). The upstream's InRelease (or Release and
Release.gpg) must be signed by a key VerifyRelease names, found in a
--keyring file, before anything of it is used ("VerifyRelease: blindtrust"
checks nothing); every index and .deb must match the size and SHA256 of
the verified listing, and a Filename leaving the upstream is refused.
Per package list, the newest version the rules offer is installed when it
is newer than the newest local one; nothing is deleted. Everything is
fetched and checked before anything changes, and each distribution is
included and published all or nothing. checkupdate prints the plan only.`,
		Example: `  lampi-pkg repo -b /srv/mirror update --keyring upstream.gpg
  lampi-pkg repo -b /srv/mirror checkupdate bookworm --keyring upstream.gpg`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoUpdate, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.keyrings, "keyring", nil, "public keyring (binary .gpg or armored .asc) holding the keys VerifyRelease names (repeatable)")
	f.DurationVar(&o.timeout, "fetch-timeout", 30*time.Minute, "longest time one upstream file may take to fetch")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runRepoUpdate(ctx context.Context, o *repoUpdateOptions) error {
	uo := repo.UpdateOptions{Check: o.check, HTTPClient: &http.Client{
		Timeout: o.timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: time.Minute,
		},
	}}
	if len(o.keyrings) > 0 {
		kr, err := loadKeyrings(o.keyrings)
		if err != nil {
			return err
		}
		uo.Keyring = kr
	}
	r, err := o.repo.open(ctx, o.env, !o.check)
	if err != nil {
		return err
	}
	res, err := r.Update(ctx, o.codenames, uo)
	if err != nil {
		return repoError(err)
	}
	if !o.check {
		return o.repo.printResult(o.env, &res.Result, o.json)
	}
	if o.json {
		return writeJSON(o.env.Out, res.Items)
	}
	w := bufio.NewWriter(o.env.Out)
	defer w.Flush()
	var last repo.Target
	for _, it := range res.Items {
		if it.Target != last {
			fmt.Fprintf(w, "Updates needed for '%s':\n", it.Target)
			last = it.Target
		}
		switch {
		case it.Delete:
			fmt.Fprintf(w, "'%s': '%s' will be deleted (no longer available or superseded)\n", it.Package, it.OldVersion)
			continue
		case it.OldVersion == "":
			fmt.Fprintf(w, "'%s': newly installed as '%s' (from '%s'):\n", it.Package, it.Version, it.Rule)
		default:
			fmt.Fprintf(w, "'%s': '%s' will be upgraded to '%s' (from '%s'):\n", it.Package, it.OldVersion, it.Version, it.Rule)
		}
		fmt.Fprintf(w, " files needed: %s\n", it.URL)
		if it.Also != "" {
			fmt.Fprintf(w, " needed by: '%s' (WithDependencies)\n", it.Also)
		}
	}
	return nil
}
