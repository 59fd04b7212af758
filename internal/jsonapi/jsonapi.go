// Package jsonapi is the client side shared by lampi-pkg's token-protected
// JSON APIs (the device-credential API, the rollout API): one request with
// a bearer token and a JSON body, its JSON answer decoded, and any other
// answer handed to the caller, which knows that API's refusals.
package jsonapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds an answer read into memory.
const maxAnswer = 64 << 20

// Client reaches one API of a server.
type Client struct {
	// What names the API in errors ("device API").
	What string
	// Base is the server URL, e.g. https://repo.example.org.
	Base string
	// Token is sent as "Authorization: Bearer TOKEN" (and nowhere else).
	Token string
	// HTTP is the client to use (nil: http.DefaultClient).
	HTTP *http.Client
}

// Do sends method on path with in as its JSON body (nil: none). An answer
// with status want is decoded into out; any other answer is given to
// refused (its status and body), whose error Do returns.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, want int, refused func(status int, body []byte) error) error {
	u := strings.TrimRight(c.Base, "/") + path
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.What, u, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", c.What, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", c.What, method, u, err)
	}
	if resp.StatusCode != want {
		return refused(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s %s: bad response: %w", c.What, method, u, err)
	}
	return nil
}
