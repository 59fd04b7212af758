package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
)

// apiAccess is how a verb reaches the token-protected API of a running
// 'lampi-pkg serve': --server URL, the token from --token-file or
// $LAMPI_TOKEN (never the command line), --ca for a private CA.
type apiAccess struct {
	server, tokenFile, ca string
}

// token returns the token of --token-file, else $LAMPI_TOKEN ("" when
// neither gives one). verb and scope word the errors.
func (a *apiAccess) token(env *Env, verb, scope string) (string, error) {
	if a.tokenFile == "" {
		return strings.TrimSpace(env.Getenv(TokenEnv)), nil
	}
	data, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return "", withHint(fmt.Errorf("%s: token file: %w", verb, err), "create a token on the server with 'lampi-pkg token create --repo DIR --name ops --scope "+scope+"' and save it in a file only you can read")
	}
	token := strings.TrimSpace(string(data))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", usageErrorf("%s: token file %s: want the token alone on one line", verb, a.tokenFile)
	}
	return token, nil
}

// client checks --server (plain http only to a loopback host), reads the
// token (one is required) and builds the HTTP client (with --ca).
func (a *apiAccess) client(env *Env, verb, scope string) (string, *http.Client, error) {
	u, err := url.Parse(a.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, usageErrorf("%s: --server %q: want http://host:port or https://host[:port]", verb, a.server)
	}
	if u.Scheme == "http" && !netutil.IsLoopbackHost(u.Hostname()) {
		return "", nil, withHint(usageErrorf("%s: --server %s: refusing plain http:// to %s, a non-loopback host: the token and the new secrets would travel in clear", verb, a.server, u.Hostname()),
			"use https:// (lampi-pkg serve --tls-cert --tls-key), with --ca for a private CA")
	}
	token, err := a.token(env, verb, scope)
	if err != nil {
		return "", nil, err
	}
	if token == "" {
		return "", nil, withHint(usageErrorf("%s: --server needs a token with scope %s", verb, scope),
			"give --token-file F or set $"+TokenEnv+" (never the token on the command line); create one with 'lampi-pkg token create --repo DIR --name ops --scope "+scope+"'")
	}
	hc := &http.Client{Timeout: time.Minute}
	if a.ca != "" {
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return "", nil, fmt.Errorf("%s: --ca: %w", verb, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, usageErrorf("%s: --ca %s: no PEM certificate in it", verb, a.ca)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	return token, hc, nil
}
