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
