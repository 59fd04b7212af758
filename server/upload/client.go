// Package upload is the client of a lampi-pkg server's upload API and the
// API's wire types, shared with the server's handlers: a Client sends
// .deb files to a distribution (one, or several published together, or a
// dry run that only asks for the server's verdict), lists the
// distributions a token may upload to and downloads published files.
// A refusal is an *APIError carrying the HTTP status, the server's
// stable code and reason; it wraps one of the sentinels of errors.go and
// says what to do (Hint).
//
// The package imports nothing of the server, so a release tool needs
// only this client, not the server's handlers.
package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
)

// Client uploads packages to a lampi-pkg server's API.
type Client struct {
	// BaseURL of the server ("https://repo.example.org/"); a path prefix
	// is kept. Plain http:// is refused unless the host is a loopback
	// address (the token would cross the network in clear), or
	// AllowPlainHTTP is set.
	BaseURL        string
	AllowPlainHTTP bool
	// Token is the bearer secret (lampi-pkg token create). It is sent in
	// the Authorization header only, never put in an error.
	Token string
	// HTTPClient sends the requests; nil is http.DefaultClient.
	HTTPClient *http.Client
	// Retries is how often a request answered 503 (server busy) is sent
	// again (0: 3; negative: never). The wait is the answer's
	// Retry-After, else 1 s, 2 s, 4 s…, at most MaxRetryWait (0: 30 s).
	Retries      int
	MaxRetryWait time.Duration
}

// File is one package to upload: its file name and how to read it
// (Open is called once per attempt).
type File struct {
	Name string
	Open func() (io.ReadCloser, error)
}

// LocalFile uploads the file at path under its base name.
func LocalFile(p string) File {
	return File{Name: path.Base(strings.ReplaceAll(p, "\\", "/")), Open: func() (io.ReadCloser, error) { return os.Open(p) }}
}

// Options refine UploadFiles.
type Options struct {
	// DryRun checks the packages and returns the server's verdict for
	// each (PackageResult.Action: add, unchanged, clash, older) without
	// writing anything.
	DryRun bool
}

// Upload sends the .deb read from r to the distribution codename (or
// suite) and returns what the server did. A refusal is an *APIError
// carrying the HTTP status and the server's reason. (r is read once: no
// retry on 503; UploadFiles retries.)
func (c *Client) Upload(ctx context.Context, codename, filename string, r io.Reader) (*Result, error) {
	u, err := c.url(codename, false)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/vnd.debian.binary-package")
	if filename != "" {
		req.Header.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(filename)}))
	}
	var res Result
	if _, err := c.do(req, &res); err != nil {
		return nil, fmt.Errorf("upload %s: %w", path.Base(filename), err)
	}
	return &res, nil
}

// UploadFiles sends the packages to the distribution codename (or suite)
// in one request: the server checks them all, then includes and
// publishes them together, or refuses them all (an *APIError naming the
// file at fault). A 503 is retried (see Retries), as long as ctx lasts.
// With no files and DryRun, it only checks the token and the
// distribution.
func (c *Client) UploadFiles(ctx context.Context, codename string, files []File, o Options) (*Result, error) {
	u, err := c.url(codename, o.DryRun)
	if err != nil {
		return nil, err
	}
	what := "upload"
	if o.DryRun {
		what = "check"
	}
	var res *Result
	err = c.retry(ctx, func() (*http.Response, error) {
		var body io.Reader = http.NoBody
		ct := ""
		if len(files) > 0 {
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			go func() { pw.CloseWithError(writeParts(mw, files)) }()
			body, ct = pr, mw.FormDataContentType()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
		if err != nil {
			return nil, err
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res = &Result{}
		return c.do(req, res)
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", what, names(files), c.BaseURL, err)
	}
	return res, nil
}

func names(files []File) string {
	if len(files) == 0 {
		return "token"
	}
	var n []string
	for _, f := range files {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

func writeParts(mw *multipart.Writer, files []File) error {
	for _, f := range files {
		r, err := f.Open()
		if err != nil {
			return err
		}
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{mime.FormatMediaType("form-data", map[string]string{"name": "package", "filename": f.Name})}
		h["Content-Type"] = []string{"application/vnd.debian.binary-package"}
		pw, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(pw, r)
		}
		r.Close()
		if err != nil {
			return err
		}
	}
	return mw.Close()
}

// Distributions returns the distributions the token may upload to.
func (c *Client) Distributions(ctx context.Context) ([]DistributionInfo, error) {
	base, err := c.base()
	if err != nil {
		return nil, err
	}
	base.Path = path.Join("/", base.Path, "api/v1/repos")
	var out []DistributionInfo
	err = c.retry(ctx, func() (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
		if err != nil {
			return nil, err
		}
		out = nil
		return c.do(req, &out)
	})
	if err != nil {
		return nil, fmt.Errorf("list distributions at %s: %w", c.BaseURL, err)
	}
	return out, nil
}

// base parses BaseURL and refuses plain HTTP beyond loopback.
func (c *Client) base() (*url.URL, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]/", c.BaseURL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL %q: no user or password in the URL; the token goes in a file", u.Redacted())
	}
	if u.Scheme == "http" && !c.AllowPlainHTTP && !netutil.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("server URL %s: refusing plain http:// to %s, a non-loopback host: the token would travel in clear; use https://", c.BaseURL, u.Hostname())
	}
	return u, nil
}

func (c *Client) url(codename string, dryRun bool) (string, error) {
	u, err := c.base()
	if err != nil {
		return "", err
	}
	if codename == "" || strings.ContainsAny(codename, "/?#%\\") || codename == "." || codename == ".." {
		return "", fmt.Errorf("distribution %q: want a codename or suite", codename)
	}
	u.Path = path.Join("/", u.Path, "api/v1/repos", codename, "packages")
	u.RawPath = ""
	u.RawQuery = ""
	if dryRun {
		u.RawQuery = "dry_run=1"
	}
	return u.String(), nil
}

// retry sends until the answer is not a 503, at most Retries more times.
func (c *Client) retry(ctx context.Context, send func() (*http.Response, error)) error {
	tries := c.Retries
	if tries == 0 {
		tries = 3
	}
	maxWait := c.MaxRetryWait
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	wait := time.Second
	for attempt := 0; ; attempt++ {
		resp, err := send()
		var apiErr *APIError
		if attempt >= tries || !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
			return err
		}
		d := wait
		if resp != nil {
			if s, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && s >= 0 {
				d = time.Duration(s) * time.Second
			}
		}
		d = min(d, maxWait)
		wait *= 2
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// do sends req with the token and decodes a 200/201 answer into out.
// The response is returned (body consumed) for its headers.
func (c *Client) do(req *http.Request, out any) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		apiErr := &APIError{}
		if json.Unmarshal(data, apiErr) != nil || apiErr.Message == "" {
			apiErr.Message = strings.TrimSpace(string(data))
			if len(apiErr.Message) > 300 {
				apiErr.Message = apiErr.Message[:300] + "…"
			}
			if apiErr.Message == "" {
				apiErr.Message = http.StatusText(resp.StatusCode)
			}
		}
		apiErr.Status = resp.StatusCode
		return resp, apiErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, fmt.Errorf("the server's answer is not what the API gives (is %s a lampi-pkg server?): %w", req.URL.Redacted(), err)
	}
	return resp, nil
}

// IsStatus reports whether err is an *APIError with the given status.
func IsStatus(err error, status int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == status
}

// Open downloads a published file of the repository ("pool/main/h/hi/
// hi_0.2_all.deb"): a plain GET, no token sent. The caller closes it.
func (c *Client) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	u, err := c.base()
	if err != nil {
		return nil, err
	}
	clean := path.Clean("/" + name)
	if !strings.HasPrefix(clean, "/pool/") && !strings.HasPrefix(clean, "/dists/") {
		return nil, fmt.Errorf("%q is not a file of the published tree (pool/, dists/)", name)
	}
	u.Path = path.Join("/", u.Path, clean)
	u.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	return resp.Body, nil
}
