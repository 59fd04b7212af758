package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Client uploads packages to a lampi-pkg server's API.
type Client struct {
	// BaseURL of the server ("https://repo.example.org/"); a path prefix
	// is kept.
	BaseURL string
	// Token is the bearer secret (lampi-pkg token create).
	Token string
	// HTTPClient sends the requests; nil is http.DefaultClient.
	HTTPClient *http.Client
}

// Upload sends the .deb read from r to the distribution codename (or
// suite) and returns what the server did. A refusal is an *APIError
// carrying the HTTP status and the server's reason.
func (c *Client) Upload(ctx context.Context, codename, filename string, r io.Reader) (*UploadResult, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]/", c.BaseURL)
	}
	u.Path = path.Join("/", u.Path, "api/v1/repos", url.PathEscape(codename), "packages")
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	if filename != "" {
		req.Header.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(filename)}))
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload %s to %s: %w", filename, c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("upload %s: reading the answer: %w", filename, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		apiErr := &APIError{}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(data))
			if len(apiErr.Message) > 300 {
				apiErr.Message = apiErr.Message[:300] + "…"
			}
		}
		apiErr.Status = resp.StatusCode
		return nil, apiErr
	}
	var res UploadResult
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("upload %s: the server's answer is not an upload result: %w", filename, err)
	}
	return &res, nil
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}
