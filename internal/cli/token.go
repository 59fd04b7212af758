package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
)

type tokenOptions struct {
	repo, tokens string
	json         bool
}

func newTokenCmd(env *Env) *cobra.Command {
	o := &tokenOptions{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the upload tokens of lampi-pkg serve",
		Long: `Tokens let CI on another machine publish through "lampi-pkg serve"
(POST /api/v1/repos/CODENAME/packages with "Authorization: Bearer TOKEN").
A token has scopes: upload:CODENAME, upload:SUITE or upload:* (every
distribution), and devices (issue, list and revoke the devices' MQTT
credentials on a running server: lampi-pkg device … --server URL), and
rollouts (start, pause, abort, revert rollouts on a running server:
lampi-pkg rollout … --server URL). Only a SHA-256 of each token is stored, in REPO/db/tokens.db
(or --tokens FILE); the token itself is printed once, by "token create".
Tokens take effect at once, also on a running server.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.repo, "repo", "", "repository base directory (the store is REPO/db/tokens.db)")
	pf.StringVar(&o.tokens, "tokens", "", "token store file (instead of --repo)")
	pf.BoolVar(&o.json, "json", false, "print JSON")
	cmd.AddCommand(newTokenCreateCmd(env, o, nil), newTokenListCmd(env, o, nil), newTokenRevokeCmd(env, o, nil))
	return cmd
}

func (o *tokenOptions) store(env *Env) (*server.TokenStore, error) {
	path := o.tokens
	if path == "" {
		if o.repo == "" {
			return nil, usageErrorf("token: give --repo DIR (or --tokens FILE)")
		}
		layout := repo.Layout{Base: o.repo}
		if _, err := os.Stat(layout.Conf()); err != nil {
			return nil, withHint(fmt.Errorf("token: %s is not a repository: %w", o.repo, err), "point --repo at the directory holding conf/distributions")
		}
		path = layout.Tokens()
	}
	return &server.TokenStore{Path: path, Now: env.Now}, nil
}

// tokenCreateOptions are those of "token create"; where (the store and
// --json) is shared with the other token verbs.
type tokenCreateOptions struct {
	env    *Env
	where  *tokenOptions
	name   string
	scopes []string
}

func newTokenCreateCmd(env *Env, where *tokenOptions, runF runFunc[tokenCreateOptions]) *cobra.Command {
	o := &tokenCreateOptions{env: env, where: where}
	cmd := &cobra.Command{
		Use:   "create --name NAME --scope upload:CODENAME…",
		Short: "Create a token and print it (once: only its hash is kept)",
		Long: `Create a token and print it on standard output, alone on its line (with
--json, as the "token" field). It is not shown again: store it now, e.g.
in your CI's secret store or a file only the uploader can read.`,
		Example: `  lampi-pkg token create --repo /srv/repo --name ci --scope upload:stable > ci.token
  lampi-pkg token create --repo /srv/repo --name ops --scope devices > ops.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runTokenCreate, o) },
	}
	cmd.Flags().StringVar(&o.name, "name", "", "name of the token (who uses it, e.g. ci)")
	cmd.Flags().StringArrayVar(&o.scopes, "scope", nil, "upload:CODENAME, upload:SUITE, upload:*, devices or rollouts (repeatable)")
	return cmd
}

func runTokenCreate(_ context.Context, o *tokenCreateOptions) error {
	env := o.env
	if o.name == "" || len(o.scopes) == 0 {
		return usageErrorf("token create: --name and at least one --scope are required")
	}
	st, err := o.where.store(env)
	if err != nil {
		return err
	}
	secret, tok, err := st.Create(o.name, o.scopes)
	if errors.Is(err, server.ErrTokenExists) {
		return withHint(err, "lampi-pkg token revoke "+o.name+", or choose another --name")
	}
	if errors.Is(err, server.ErrScope) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	if o.where.json {
		return writeJSON(env.Out, struct {
			*server.Token
			Secret string `json:"token"`
		}{tok, secret})
	}
	fmt.Fprintln(env.Out, secret)
	fmt.Fprintf(env.Err, "created token %q (ID %s), scopes %s; it is shown only this once\n", tok.Name, tok.ID, strings.Join(tok.Scopes, ", "))
	return nil
}

// tokenVerbOptions are those of "token list" and "token revoke".
type tokenVerbOptions struct {
	env   *Env
	where *tokenOptions
	token string // revoke: its name or ID
}

func newTokenListCmd(env *Env, where *tokenOptions, runF runFunc[tokenVerbOptions]) *cobra.Command {
	o := &tokenVerbOptions{env: env, where: where}
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runTokenList, o) },
	}
}

func runTokenList(_ context.Context, o *tokenVerbOptions) error {
	env := o.env
	st, err := o.where.store(env)
	if err != nil {
		return err
	}
	list, err := st.List()
	if err != nil {
		return err
	}
	if o.where.json {
		if list == nil {
			list = []server.Token{}
		}
		return writeJSON(env.Out, list)
	}
	tw := newTable(env.Out)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tSTATUS")
	for _, t := range list {
		status := "active"
		if t.Revoked != nil {
			status = "revoked " + t.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.Created.Format(time.RFC3339), status)
	}
	return tw.Flush()
}

func newTokenRevokeCmd(env *Env, where *tokenOptions, runF runFunc[tokenVerbOptions]) *cobra.Command {
	o := &tokenVerbOptions{env: env, where: where}
	return &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Revoke a token: the server refuses it from now on (403)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.token = args[0]
			return runVerb(cmd, runF, runTokenRevoke, o)
		},
	}
}

func runTokenRevoke(_ context.Context, o *tokenVerbOptions) error {
	env := o.env
	st, err := o.where.store(env)
	if err != nil {
		return err
	}
	tok, err := st.Revoke(o.token)
	if errors.Is(err, server.ErrTokenNotFound) {
		return withHint(err, "lampi-pkg token list shows the names and IDs")
	}
	if err != nil {
		return err
	}
	if o.where.json {
		return writeJSON(env.Out, tok)
	}
	fmt.Fprintf(env.Out, "revoked token %q (ID %s)\n", tok.Name, tok.ID)
	return nil
}
