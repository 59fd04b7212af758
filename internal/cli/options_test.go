package cli

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/bytesize"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// capture makes a verb's constructor into one whose runF keeps a copy of
// the parsed options in *got and runs nothing.
func capture[O any](newCmd func(*Env, runFunc[O]) *cobra.Command) func(*Env, *any) *cobra.Command {
	return func(env *Env, got *any) *cobra.Command {
		return newCmd(env, func(_ context.Context, o *O) error {
			c := *o
			*got = &c
			return nil
		})
	}
}

// captureRepo is capture for a repo verb: a "repo" command with the
// shared flags, around the verb, whose options point to them.
func captureRepo[O any](newCmd func(*Env, *repoOptions, runFunc[O]) *cobra.Command) func(*Env, *any) *cobra.Command {
	return func(env *Env, got *any) *cobra.Command {
		ro := &repoOptions{}
		group := &cobra.Command{Use: "repo"}
		ro.flags(group)
		group.AddCommand(capture(func(env *Env, runF runFunc[O]) *cobra.Command {
			return newCmd(env, ro, runF)
		})(env, got))
		return group
	}
}

// repoFlags is what "repo" makes of the shared flags: the defaults, with
// -b BASE if base is not empty, and the names of the flags given.
func repoFlags(base string, given ...string) *repoOptions {
	o := &repoOptions{basedir: base, waitForLock: -1, lockTimeout: time.Minute, export: "changed", byHashKeep: 24 * time.Hour,
		target: targetFlags{workers: 8}}
	for _, n := range given {
		if o.set == nil {
			o.set = map[string]bool{}
		}
		o.set[n] = true
	}
	return o
}

// repoDelete is repoFlags with reprepro's global --delete given once.
func repoDelete() *repoOptions {
	o := repoFlags("", "delete")
	o.delete = 1
	return o
}

// TestVerbOptions parses command lines of a representative set of verbs
// with a runF that only captures the options: each flag and argument must
// land in its own field, defaults included, and bad use must end with the
// usage exit code before anything runs.
func TestVerbOptions(t *testing.T) {
	env := &Env{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Getenv: func(string) string { return "" }, Now: time.Now}
	build := capture(newBuildCmd)
	bump := capture(newBumpCmd)
	sign := capture(newSignCmd)
	verify := capture(newVerifyCmd)
	release := capture(newReleaseCmd)
	serve := capture(newServeCmd)
	report := capture(newFleetReportCmd)
	versionCheck := capture(newVersionCheckCmd)
	deviceAdd := func(env *Env, got *any) *cobra.Command {
		where := &deviceOptions{}
		group := &cobra.Command{Use: "device"}
		where.flags(group)
		group.AddCommand(capture(func(env *Env, runF runFunc[deviceAddOptions]) *cobra.Command {
			return newDeviceAddCmd(env, where, runF)
		})(env, got))
		return group
	}
	includeDeb, remove, list := captureRepo(newRepoIncludeDebCmd), captureRepo(newRepoRemoveCmd), captureRepo(newRepoListCmd)
	listFilter, copyVerb, phase := captureRepo(newRepoListFilterCmd), captureRepo(newRepoCopyCmd), captureRepo(newRepoPhaseCmd)
	export, check, checkPool := captureRepo(newRepoExportCmd), captureRepo(newRepoCheckCmd), captureRepo(newRepoCheckPoolCmd)
	update := captureRepo(func(env *Env, ro *repoOptions, runF runFunc[repoUpdateOptions]) *cobra.Command {
		return newRepoUpdateCmd(env, ro, false, runF)
	})
	checkUpdate := captureRepo(func(env *Env, ro *repoOptions, runF runFunc[repoUpdateOptions]) *cobra.Command {
		return newRepoUpdateCmd(env, ro, true, runF)
	})
	dumpUnref, symlinks, repoInit := captureRepo(newRepoDumpUnreferencedCmd), captureRepo(newRepoCreateSymlinksCmd), captureRepo(newRepoInitCmd)
	repoAll := &repoOptions{basedir: "/srv", outdir: "o", dbdir: "d", logdir: "l", keydir: "k", components: []string{"contrib"},
		architectures: []string{"armhf", "arm64"}, types: []string{"deb"}, section: "admin", priority: "optional", waitForLock: 3,
		lockTimeout: 5 * time.Second, export: "never", keepUnreferenced: true, plainFileIO: true, verbose: 2, silent: true,
		passphraseFile: "p", byHashKeep: time.Hour, target: targetFlags{workers: 8}, set: map[string]bool{}}
	for _, n := range strings.Fields("basedir outdir dbdir logdir keydir component architecture type section priority waitforlock lock-timeout export keepunreferencedfiles verbose silent passphrase-file byhash-keep plain-file-io") {
		repoAll.set[n] = true
	}
	repoTargets := repoFlags("", "publish-to", "s3-endpoint", "s3-region", "s3-path-style", "s3-insecure", "upload-workers")
	repoTargets.target = targetFlags{publishTo: []string{"s3://b/p", "file:///m"}, endpoint: "m:9000", region: "r", pathStyle: true, insecure: true, workers: 2}
	serveDefaults := serveOptions{env: env, repo: "/srv/repo", listen: "127.0.0.1:8080",
		maxUpload: bytesize.Format(server.DefaultMaxUpload), lockTimeout: 30 * time.Second, accessLog: "-", logFormat: "json",
		renewInterval: 10 * time.Minute, rolloutInterval: time.Minute, maxConns: server.DefaultMaxConns, maxConnsPerIP: server.DefaultMaxConnsPerAddr,
		maxValidations: server.DefaultMaxValidations, maxControlSize: "16MiB",
		fleet: serveFleetOptions{mqttListen: fleet.DefaultBrokerAddr, maxPending: fleet.DefaultMaxPendingPerAddr,
			connectTimeout: fleet.DefaultConnectTimeout, staleView: fleet.DefaultStaleView}}
	serveAll := serveDefaults
	serveAll.listen, serveAll.maxConns, serveAll.maxConnsSet, serveAll.requireSignature = ":8443", 5, true, []string{"stable=k.gpg", "b=c"}
	serveAll.tlsCert, serveAll.tlsKey, serveAll.tokens, serveAll.addrFile = "c.pem", "k.pem", "t.db", "addr"
	serveAll.fleet.disabled, serveAll.fleet.db, serveAll.fleet.staleView = true, "f.db", time.Hour

	cases := []struct {
		name  string
		cmd   func(*Env, *any) *cobra.Command
		args  string
		want  any    // nil: refused before running, with the message usage
		usage string // and the exit code 2, or 1 for cobra's mutually exclusive flags
	}{
		{"build defaults", build, "build tree",
			&buildOptions{env: env, dir: "tree", compress: "xz"}, ""},
		{"build flags", build, "build tree -o out/ -Z gzip --level 9 --mtime @1 --owners o.txt --umask 022 --json",
			&buildOptions{env: env, dir: "tree", output: "out/", compress: "gzip", level: 9, mtime: "@1", owners: "o.txt", umask: "022", json: true}, ""},
		{"build without DIR", build, "build", nil, "accepts 1 arg"},
		{"bump", bump, "bump minor hi -n --json --no-tag --allow-dirty",
			&bumpOptions{env: env, args: []string{"minor", "hi"}, dryRun: true, json: true, noTag: true, allowDirty: true}, ""},
		{"bump new version", bump, "bump --new-version 1:2.0-1 --commit --tag",
			&bumpOptions{env: env, args: []string{}, newVersion: "1:2.0-1", commit: true, tag: true}, ""},
		{"bump commit and no-commit", bump, "bump minor --commit --no-commit", nil, "none of the others can be"},
		{"sign defaults", sign, "sign a.deb",
			&signOptions{env: env, files: []string{"a.deb"}, policy: signing.DefaultDebsigPolicyName}, ""},
		{"sign flags", sign, "sign a.deb b.deb -k k.asc --passphrase-file p --debsig-policy d --policy-name x --json",
			&signOptions{env: env, files: []string{"a.deb", "b.deb"}, key: "k.asc", passphraseFile: "p", policyRoot: "d", policy: "x", json: true}, ""},
		{"sign nothing", sign, "sign -k k.asc", nil, "give the .deb files to sign"},
		{"verify", verify, "verify a.deb --keyring k1 --keyring k2 --json",
			&verifyOptions{env: env, file: "a.deb", keyrings: []string{"k1", "k2"}, json: true}, ""},
		{"verify two files", verify, "verify a.deb b.deb", nil, "accepts 1 arg"},
		{"release defaults", release, "release --repo /srv",
			&releaseOptions{env: env, dirs: []string{}, repoDir: "/srv", compress: "xz", lockTimeout: time.Minute}, ""},
		{"release flags", release, "release hi ui --repo /srv --codename bookworm -C main --bump minor --sign-deb -k k.asc -o out -Z zstd --mtime 5 --lock-timeout 5s -n --no-commit --tag --json",
			&releaseOptions{env: env, dirs: []string{"hi", "ui"}, repoDir: "/srv", codename: "bookworm", component: "main", part: "minor",
				signDeb: true, key: "k.asc", out: "out", compress: "zstd", mtime: "5", lockTimeout: 5 * time.Second, lockTimeoutSet: true,
				dryRun: true, noCommit: true, tag: true, json: true}, ""},
		{"release to server", release, "release --to https://r.example/ --token-file t --ca ca.pem",
			&releaseOptions{env: env, dirs: []string{}, to: "https://r.example/", tokenFile: "t", ca: "ca.pem", compress: "xz", lockTimeout: time.Minute}, ""},
		{"release repo and to", release, "release --repo /srv --to https://r.example/", nil, "none of the others can be"},
		{"serve defaults", serve, "serve --repo /srv/repo", &serveDefaults, ""},
		{"serve flags", serve, "serve --repo /srv/repo --listen :8443 --tls-cert c.pem --tls-key k.pem --tokens t.db --addr-file addr --max-conns 5 --require-signature stable=k.gpg --require-signature b=c --no-fleet --fleet-db f.db --stale-view 1h",
			&serveAll, ""},
		{"serve argument", serve, "serve /srv/repo", nil, "unknown command"},
		{"fleet report defaults", report, "report",
			&fleetReportOptions{env: env, src: fleetSource{db: "fleet.db"}, staleView: fleet.DefaultStaleView}, ""},
		{"fleet report flags", report, "report --server http://127.0.0.1:8080 --package hi --stale 24h --stale-view 0 --newest hi=0.2 --newest x=1 --csv",
			&fleetReportOptions{env: env, src: fleetSource{db: "fleet.db", server: "http://127.0.0.1:8080"}, out: outputFormat{csv: true},
				pkg: "hi", stale: 24 * time.Hour, newest: []string{"hi=0.2", "x=1"}}, ""},
		{"fleet report json and csv", report, "report --json --csv", nil, "none of the others can be"},
		{"device add", deviceAdd, "device add a b --db f.db --collector --json",
			&deviceAddOptions{env: env, where: &deviceOptions{db: "f.db"}, ids: []string{"a", "b"}, collector: true, json: true}, ""},
		{"device add server", deviceAdd, "device --server https://s --token-file t --ca ca.pem add a",
			&deviceAddOptions{env: env, where: &deviceOptions{server: "https://s", tokenFile: "t", ca: "ca.pem"}, ids: []string{"a"}}, ""},
		{"device add nobody", deviceAdd, "device add --db f.db", nil, "requires at least 1 arg"},
		{"repo update", update, "repo -b /srv --noskipold update mirror other --keyring k1 --keyring k2 --fetch-timeout 1m --json",
			&repoUpdateOptions{env: env, repo: repoFlags("/srv", "basedir", "noskipold"), codenames: []string{"mirror", "other"}, keyrings: []string{"k1", "k2"}, timeout: time.Minute, json: true}, ""},
		{"repo checkupdate defaults", checkUpdate, "repo --skipold checkupdate",
			&repoUpdateOptions{env: env, repo: repoFlags("", "skipold"), codenames: []string{}, timeout: 30 * time.Minute, check: true}, ""},
		{"repo update unknown flag", update, "repo update --no-such-flag", nil, "unknown flag: --no-such-flag"},
		{"repo includedeb", includeDeb, "repo -b /srv includedeb bookworm a.deb b.deb",
			&repoIncludeDebOptions{env: env, repo: repoFlags("/srv", "basedir"), codename: "bookworm", files: []string{"a.deb", "b.deb"}}, ""},
		{"repo includedeb flags", includeDeb, "repo -b /srv --outdir o --dbdir d --logdir l --keydir k -C contrib -A armhf,arm64 -T deb -S admin -P optional --waitforlock 3 --lock-timeout 5s --export never --keepunreferencedfiles -vv --silent --passphrase-file p --byhash-keep 1h --plain-file-io includedeb bookworm a.deb --json",
			&repoIncludeDebOptions{env: env, repo: repoAll, codename: "bookworm", files: []string{"a.deb"}, json: true}, ""},
		{"repo includedeb two components", includeDeb, "repo -C main,contrib includedeb bookworm a.deb", nil, "give one component with -C"},
		{"repo includedeb no file", includeDeb, "repo includedeb bookworm", nil, "requires at least 2 arg"},
		{"repo remove", remove, "repo -A armhf remove bookworm hi ui --json",
			&repoRemoveOptions{env: env, repo: &repoOptions{architectures: []string{"armhf"}, waitForLock: -1, lockTimeout: time.Minute, export: "changed",
				byHashKeep: 24 * time.Hour, target: targetFlags{workers: 8}, set: map[string]bool{"architecture": true}}, codename: "bookworm", packages: []string{"hi", "ui"}, json: true}, ""},
		{"repo list", list, "repo list bookworm hi --json",
			&repoListOptions{env: env, repo: repoFlags(""), codename: "bookworm", packages: []string{"hi"}, json: true}, ""},
		{"repo list everything", list, "repo list bookworm",
			&repoListOptions{env: env, repo: repoFlags(""), codename: "bookworm", packages: []string{}}, ""},
		{"repo listfilter", listFilter, "repo listfilter bookworm Package --json",
			&repoListFilterOptions{env: env, repo: repoFlags(""), codename: "bookworm", formula: "Package", json: true}, ""},
		{"repo copy", copyVerb, "repo copy stable testing hi ui",
			&repoCopyOptions{env: env, repo: repoFlags(""), dest: "stable", src: "testing", packages: []string{"hi", "ui"}}, ""},
		{"repo phase", phase, "repo phase bookworm hi 10 --json",
			&repoPhaseOptions{env: env, repo: repoFlags(""), codename: "bookworm", pkg: "hi", percent: 10, json: true}, ""},
		{"repo phase too far", phase, "repo phase bookworm hi 101", nil, "PERCENT must be a number from 0 to 100"},
		{"repo export", export, "repo export bookworm",
			&repoExportOptions{env: env, repo: repoFlags(""), codenames: []string{"bookworm"}}, ""},
		{"repo export renew", export, "repo --lock-timeout 2s export --renew --json",
			&repoExportOptions{env: env, repo: &repoOptions{waitForLock: -1, lockTimeout: 2 * time.Second, export: "changed", byHashKeep: 24 * time.Hour,
				target: targetFlags{workers: 8}, set: map[string]bool{"lock-timeout": true}}, codenames: []string{}, renew: true, json: true}, ""},
		{"repo check", check, "repo check bookworm",
			&repoCheckOptions{env: env, repo: repoFlags(""), codenames: []string{"bookworm"}}, ""},
		{"repo check targets", check, "repo --publish-to s3://b/p --publish-to file:///m --s3-endpoint m:9000 --s3-region r --s3-path-style --s3-insecure --upload-workers 2 check --targets --repair --json",
			&repoCheckOptions{env: env, repo: repoTargets, codenames: []string{}, targets: true, repair: true, json: true}, ""},
		{"repo checkpool fast", checkPool, "repo checkpool fast", &repoCheckPoolOptions{env: env, repo: repoFlags(""), fast: true}, ""},
		{"repo checkpool slow", checkPool, "repo checkpool slow", nil, `the only argument is "fast"`},
		{"repo dumpunreferenced", dumpUnref, "repo dumpunreferenced", &repoPoolOptions{env: env, repo: repoFlags("")}, ""},
		{"repo dumpunreferenced argument", dumpUnref, "repo dumpunreferenced x", nil, "unknown command"},
		{"repo createsymlinks", symlinks, "repo createsymlinks --delete a b",
			&repoCreateSymlinksOptions{env: env, repo: repoDelete(), codenames: []string{"a", "b"}, replace: true}, ""},
		{"repo --delete createsymlinks", symlinks, "repo --delete createsymlinks a",
			&repoCreateSymlinksOptions{env: env, repo: repoDelete(), codenames: []string{"a"}, replace: true}, ""},
		{"repo createsymlinks keeps links", symlinks, "repo createsymlinks",
			&repoCreateSymlinksOptions{env: env, repo: repoFlags(""), codenames: []string{}, replace: false}, ""},
		{"repo init defaults", repoInit, "repo init /srv",
			&repoInitOptions{env: env, repo: repoFlags(""), dir: "/srv", validFor: repo.DefaultValidFor}, ""},
		{"repo init flags", repoInit, "repo init /srv --codename c --suite s --origin o --label l --description d --components main,beta --architectures armhf --sign-with k.asc --limit 3 --valid-for 2w",
			&repoInitOptions{env: env, repo: repoFlags(""), dir: "/srv", codename: "c", suite: "s", origin: "o", label: "l", description: "d",
				components: []string{"main", "beta"}, architectures: []string{"armhf"}, signWith: "k.asc", limit: 3, validFor: "2w"}, ""},
		{"version check", versionCheck, "check 1.0 2:3-4 --json",
			&versionCheckOptions{env: env, versions: []string{"1.0", "2:3-4"}, json: true}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got any
			root := &cobra.Command{Use: "lampi-pkg", SilenceErrors: true, SilenceUsage: true}
			root.SetOut(io.Discard)
			root.AddCommand(c.cmd(env, &got))
			root.SetArgs(strings.Fields(c.args))
			cmd, err := root.ExecuteC()
			var msg bytes.Buffer
			code := exitCode(&msg, cmd.CommandPath(), err)
			if c.want == nil {
				want := ExitUsage
				if code != want || !strings.Contains(msg.String(), c.usage) || got != nil {
					t.Fatalf("%s: exit %d, want %d with %q; options %+v; message:\n%s", c.args, code, want, c.usage, got, msg.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.args, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s:\n got %+v\nwant %+v", c.args, got, c.want)
			}
		})
	}
}
