package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/internal/jsonapi"
)

// Client manages rollouts through the API of a running server
// (APIHandlers).
type Client struct {
	// Base is the server URL, e.g. https://repo.example.org.
	Base string
	// Token is the bearer token (scope "rollouts"); it is sent only in
	// the Authorization header.
	Token string
	// HTTP is the client to use (default http.DefaultClient).
	HTTP *http.Client
}

// keyPath is the API path of the rollout named key
// (DISTRIBUTION/PACKAGE/VERSION), each part escaped.
func keyPath(key string) (string, error) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", fmt.Errorf("%w: %q is not a rollout name: want DISTRIBUTION/PACKAGE/VERSION", ErrNotFound, key)
	}
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return APIPath + "/" + strings.Join(parts, "/"), nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, want int) error {
	api := jsonapi.Client{What: "rollout API", Base: c.Base, Token: c.Token, HTTP: c.HTTP}
	return api.Do(ctx, method, path, in, out, want, func(status int, data []byte) error {
		ae := &APIError{}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae = &APIError{Code: "http", Message: method + " " + strings.TrimRight(c.Base, "/") + path + ": " + fmt.Sprintf("%d %s", status, http.StatusText(status))}
		}
		ae.Status = status
		return ae
	})
}

// List returns every rollout of the server.
func (c *Client) List(ctx context.Context) ([]Rollout, error) {
	var out []Rollout
	return out, c.do(ctx, http.MethodGet, APIPath, nil, &out, http.StatusOK)
}

// Status returns one rollout with its audit log.
func (c *Client) Status(ctx context.Context, key string) (*Status, error) {
	p, err := keyPath(key)
	if err != nil {
		return nil, err
	}
	out := &Status{}
	return out, c.do(ctx, http.MethodGet, p, nil, out, http.StatusOK)
}

// Start starts a rollout on the server (its controller reads the fleet
// and publishes).
func (c *Client) Start(ctx context.Context, req StartRequest) (*Rollout, error) {
	out := &Rollout{}
	return out, c.do(ctx, http.MethodPost, APIPath, req, out, http.StatusCreated)
}

// Change makes one of Actions on the rollout named key.
func (c *Client) Change(ctx context.Context, action, key, reason string) (*Rollout, error) {
	p, err := keyPath(key)
	if err != nil {
		return nil, err
	}
	out := &Rollout{}
	return out, c.do(ctx, http.MethodPost, p+"/"+url.PathEscape(action), ChangeRequest{Reason: reason}, out, http.StatusOK)
}
