package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/jsonapi"
)

// Paths of the device-credential API of a running server. The handler
// does no authentication of its own: the server wraps it (lampi-pkg serve
// requires a bearer token with the "devices" scope).
const (
	DevicesAPIPath     = "/api/v1/fleet/devices"     // POST: issue
	CredentialsAPIPath = "/api/v1/fleet/credentials" // GET: list; DELETE …/{id}: revoke
	ResetAPIPath       = "/api/v1/fleet/reset"       // POST: forget devices' stored seq
)

// ResetRequest is the body of POST /api/v1/fleet/reset, and ResetResponse
// its answer.
type ResetRequest struct {
	IDs []string `json:"ids"`
}

// ResetResponse lists the devices whose stored seq was forgotten.
type ResetResponse struct {
	Reset []string `json:"reset"`
}

// maxIssue bounds the ids of one POST.
const maxIssue = 10000

// IssueRequest is the body of POST /api/v1/fleet/devices.
type IssueRequest struct {
	IDs  []string `json:"ids"`
	Role string   `json:"role,omitempty"` // RoleDevice (default) or RoleCollector
}

// DevicesAPIError is the JSON answer to a refused device-API request
// (the same shape as the upload API's refusals), and the error
// DevicesClient returns for one.
type DevicesAPIError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *DevicesAPIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// Unwrap maps 404 to ErrNotFound and 409 to ErrExists.
func (e *DevicesAPIError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrExists
	}
	return nil
}

// DevicesAPIHandlers returns the handlers of the device-credential API,
// pattern → handler, for a server to mount behind its own authorization:
//
//	POST   /api/v1/fleet/devices           {"ids":[…],"role":"device"} → 201 []Issued (secrets, shown once)
//	GET    /api/v1/fleet/credentials       → []Credential (no secrets, no hashes)
//	DELETE /api/v1/fleet/credentials/{id}  → {"removed":"ID"}
//	POST   /api/v1/fleet/reset             {"ids":[…]} → {"reset":[…]} (Store.ResetSeq; 404 if one never reported)
func DevicesAPIHandlers(store DeviceAdmin) map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + ResetAPIPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req ResetRequest
			if !decodeIDsRequest(w, r, &req, &req.IDs, `{"ids":["ID",…]}`) {
				return
			}
			err := store.ResetSeq(r.Context(), req.IDs...)
			switch {
			case errors.Is(err, ErrNotFound):
				devicesError(w, http.StatusNotFound, "not_found", err.Error())
				return
			case err != nil:
				devicesError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			apiJSON(w, ResetResponse{Reset: req.IDs})
		}),
		"POST " + DevicesAPIPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req IssueRequest
			if !decodeIDsRequest(w, r, &req, &req.IDs, `{"ids":["ID",…],"role":"device"}`) {
				return
			}
			if req.Role == "" {
				req.Role = RoleDevice
			}
			if req.Role != RoleDevice && req.Role != RoleCollector {
				devicesError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("role %q: use %q or %q", req.Role, RoleDevice, RoleCollector))
				return
			}
			for _, id := range req.IDs {
				if state.ValidDeviceID(id) != nil {
					devicesError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("%q is not a valid device id: use 1 to %d letters, digits, '.', '-' or '_', starting with a letter, digit or '_'", id, state.MaxIDLen))
					return
				}
			}
			issued, err := store.IssueCredentials(r.Context(), req.Role, req.IDs...)
			switch {
			case errors.Is(err, ErrExists):
				devicesError(w, http.StatusConflict, "exists", err.Error())
				return
			case err != nil:
				devicesError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(issued)
		}),
		"GET " + CredentialsAPIPath: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			creds, err := store.Credentials(r.Context())
			if err != nil {
				devicesError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			apiJSON(w, creds)
		}),
		"DELETE " + CredentialsAPIPath + "/{id}": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			err := store.RemoveCredential(r.Context(), id)
			switch {
			case errors.Is(err, ErrNotFound):
				devicesError(w, http.StatusNotFound, "not_found", err.Error())
				return
			case err != nil:
				devicesError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			apiJSON(w, map[string]string{"removed": id})
		}),
	}
}

// decodeIDsRequest reads the JSON body of r into req (unknown fields
// refused) and checks that *ids, a field of req, holds 1 to maxIssue ids;
// otherwise it answers 400 (the body should look like shape) and returns
// false.
func decodeIDsRequest(w http.ResponseWriter, r *http.Request, req any, ids *[]string, shape string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		devicesError(w, http.StatusBadRequest, "bad_request", "body: want JSON "+shape+": "+err.Error())
		return false
	}
	if len(*ids) == 0 || len(*ids) > maxIssue {
		devicesError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("give 1 to %d ids, got %d", maxIssue, len(*ids)))
		return false
	}
	return true
}

func devicesError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(&DevicesAPIError{Status: status, Code: code, Message: msg})
}

// DevicesClient manages device credentials through the API of a running
// server.
type DevicesClient struct {
	// Base is the server URL, e.g. http://127.0.0.1:8080.
	Base string
	// Token is the bearer token (scope "devices"); it is sent only in the
	// Authorization header.
	Token string
	// HTTP is the client to use (default http.DefaultClient).
	HTTP *http.Client
}

func (c *DevicesClient) do(ctx context.Context, method, path string, in, out any, want int) error {
	api := jsonapi.Client{What: "device API", Base: c.Base, Token: c.Token, HTTP: c.HTTP}
	return api.Do(ctx, method, path, in, out, want, func(status int, data []byte) error {
		ae := &DevicesAPIError{}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae = &DevicesAPIError{Code: "http", Message: method + " " + strings.TrimRight(c.Base, "/") + path + ": " + fmt.Sprintf("%d %s", status, http.StatusText(status))}
		}
		ae.Status = status
		return ae
	})
}

// IssueCredentials issues credentials for ids with role (RoleDevice or
// RoleCollector) and returns their secrets.
func (c *DevicesClient) IssueCredentials(ctx context.Context, role string, ids ...string) ([]Issued, error) {
	var out []Issued
	err := c.do(ctx, http.MethodPost, DevicesAPIPath, IssueRequest{IDs: ids, Role: role}, &out, http.StatusCreated)
	return out, err
}

// Credentials returns the issued credentials (no secrets).
func (c *DevicesClient) Credentials(ctx context.Context) ([]Credential, error) {
	var out []Credential
	err := c.do(ctx, http.MethodGet, CredentialsAPIPath, nil, &out, http.StatusOK)
	return out, err
}

// ResetSeq forgets the stored seq of the devices ids (Store.ResetSeq).
func (c *DevicesClient) ResetSeq(ctx context.Context, ids ...string) error {
	var out ResetResponse
	return c.do(ctx, http.MethodPost, ResetAPIPath, ResetRequest{IDs: ids}, &out, http.StatusOK)
}

// RemoveCredential revokes the credential of id.
func (c *DevicesClient) RemoveCredential(ctx context.Context, id string) error {
	var out map[string]string
	return c.do(ctx, http.MethodDelete, CredentialsAPIPath+"/"+url.PathEscape(id), nil, &out, http.StatusOK)
}
