package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

// ScopeDevices lets a token manage the fleet's device credentials on a
// running server (issue, list, revoke the MQTT logins of the embedded
// broker). Upload scopes do not include it, nor does it include them.
const ScopeDevices = "devices"

// ScopeRollouts lets a token manage rollouts on a running server (start,
// status, pause, resume, abort, revert). Upload and device scopes do not
// include it, nor does it include them.
const ScopeRollouts = "rollouts"

// HasScope reports whether the token carries exactly this scope.
func (t *Token) HasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}

// RequireScope wraps h so that it runs only for a request with a valid,
// unrevoked bearer token that has the given scope. Refusals are answered
// like the upload API's, as an upload.APIError in JSON: 401 unauthorized (no,
// unknown or malformed token), 403 revoked, 403 forbidden (out of scope).
// logger (nil: none) gets one record per refusal, never the secret.
func RequireScope(tokens *TokenStore, scope string, logger *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, code, msg string) {
			if logger != nil {
				logger.Warn("request refused", "path", r.URL.Path, "status", status, "code", code, "error", msg)
			}
			hd := w.Header()
			hd.Set("Content-Type", "application/json")
			hd.Set("Cache-Control", "no-store")
			if status == http.StatusUnauthorized {
				hd.Set("WWW-Authenticate", `Bearer realm="lampi-pkg"`)
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(&upload.APIError{Status: status, Code: code, Message: msg})
		}
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			refuse(http.StatusUnauthorized, "unauthorized", "no bearer token: send 'Authorization: Bearer TOKEN' (create one with lampi-pkg token create --scope "+scope+")")
			return
		}
		tok, err := tokens.Authenticate(secret)
		switch {
		case errors.Is(err, ErrTokenRevoked):
			refuse(http.StatusForbidden, "revoked", "token \""+tok.Name+"\" (ID "+tok.ID+") was revoked; ask for a new one")
			return
		case errors.Is(err, ErrTokenInvalid):
			refuse(http.StatusUnauthorized, "unauthorized", "unknown or malformed token")
			return
		case err != nil:
			refuse(http.StatusInternalServerError, "internal", "token store: "+err.Error())
			return
		}
		if !tok.HasScope(scope) {
			refuse(http.StatusForbidden, "forbidden", "token \""+tok.Name+"\" lacks the scope "+scope+" (it has: "+strings.Join(tok.Scopes, ", ")+")")
			return
		}
		h.ServeHTTP(w, r)
	})
}
