package upload

import (
	"fmt"
	"net/http"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Result is the JSON answer to a successful upload (or dry run) of
// one or several packages.
type Result struct {
	// Codename of the distribution the packages went (or would go) into.
	Codename string `json:"codename"`
	// DryRun: nothing was written; Packages carry the verdicts.
	DryRun bool `json:"dry_run,omitempty"`
	// Published is true when the distribution was published anew.
	Published bool `json:"published"`

	// Package … Signature describe the package when the upload held
	// exactly one (the single-file form); Packages lists every package.
	Package      string `json:"package,omitempty"`
	Version      string `json:"version,omitempty"`
	Architecture string `json:"architecture,omitempty"`
	// Action: see PackageResult.Action.
	Action string `json:"action,omitempty"`
	// Filename is the pool path ("pool/main/h/hi/hi_0.2_all.deb").
	Filename string `json:"filename,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Size     int64  `json:"size,omitempty"`
	// Signature is the origin signature checked, when one was required.
	Signature *signing.Signature `json:"signature,omitempty"`

	// Packages are the uploaded packages, in upload order.
	Packages []PackageResult `json:"packages"`
	// Changes are the effects on the package lists.
	Changes []Change `json:"changes"`
	// Exported lists the distributions published by this upload; Deleted
	// the pool files removed because nothing needs them any more.
	Exported []string `json:"exported,omitempty"`
	Deleted  []string `json:"deleted,omitempty"`
}

// Upload actions (PackageResult.Action). A real upload has add, replace
// or unchanged; a dry run says add (new version), unchanged (this very
// file is published already), clash (the same version is published with
// other bytes: the upload would be refused 409) or older (a newer
// version is published: refused 409).
const (
	ActionAdd       = "add"
	ActionReplace   = "replace"
	ActionUnchanged = "unchanged"
	ActionClash     = "clash"
	ActionOlder     = "older"
)

// PackageResult is one uploaded package.
type PackageResult struct {
	// File is the name the client gave the file.
	File         string `json:"file"`
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Action       string `json:"action"`
	// Filename is the pool path: where the package is (add, replace,
	// unchanged), or the published file in the way (clash, older). A dry
	// run's add has none.
	Filename string `json:"filename,omitempty"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	// Existing is the version in the way (clash, older), ExistingSHA256
	// the SHA256 of its pool file.
	Existing       string `json:"existing_version,omitempty"`
	ExistingSHA256 string `json:"existing_sha256,omitempty"`
	// Signature is the origin signature checked, when one was required.
	Signature *signing.Signature `json:"signature,omitempty"`
}

// Change is one effect of an upload on a package list (repo.Change with
// the target written "codename|component|arch").
type Change struct {
	Action     string `json:"action"`
	Target     string `json:"target"`
	Package    string `json:"package"`
	Version    string `json:"version"`
	OldVersion string `json:"old_version,omitempty"`
	File       string `json:"file,omitempty"`
}

// DistributionInfo is a distribution a token may upload to (GET
// /api/v1/repos).
type DistributionInfo struct {
	Codename      string   `json:"codename"`
	Suite         string   `json:"suite,omitempty"`
	Components    []string `json:"components"`
	Architectures []string `json:"architectures"`
}

// APIError is the JSON answer to a refused request (and the error the
// Client returns for one).
type APIError struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Code is a stable machine-readable reason: unauthorized, revoked,
	// forbidden, unknown_distribution, too_large, unsupported_media_type,
	// not_a_deb, bad_package, bad_signature, version_clash,
	// older_version, read_only, busy, internal.
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// Unwrap maps the status to a sentinel error (ErrUnauthorized…).
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusConflict:
		return ErrConflict
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return ErrRejected
	case http.StatusServiceUnavailable:
		return ErrBusy
	}
	return nil
}

// Hint says what to do about the refusal ("" when nothing obvious).
func (e *APIError) Hint() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return "check the token file: create a token on the server with 'lampi-pkg token create --name NAME --scope upload:CODENAME'"
	case e.Code == "revoked":
		return "the token was revoked: ask the server's operator for a new one (lampi-pkg token create)"
	case e.Code == "forbidden":
		return "the token's scopes do not cover this distribution: use another token or --codename"
	case e.Code == "read_only":
		return "the distribution is ReadOnly on the server: publish to another one"
	case e.Code == "version_clash":
		return "bump the version (--bump patch or --bump revision): apt never downloads a version it already has"
	case e.Code == "older_version":
		return "bump the version past the published one"
	case e.Status == http.StatusRequestEntityTooLarge:
		return "the server's limit is set with 'lampi-pkg serve --max-upload'"
	case e.Code == "bad_signature":
		return "sign the packages with a key the server trusts (--sign-deb --key KEY)"
	case e.Status == http.StatusServiceUnavailable:
		return "the repository is locked by another writer: try again later"
	}
	return ""
}
