package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// APIPath is the root of the rollout management API of a running server.
// The handlers do no authentication of their own: the server wraps them
// (lampi-pkg serve requires a bearer token with the "rollouts" scope).
const APIPath = "/api/v1/rollouts"

// Actions are the changes the API (and Client.Change) make to a rollout.
var Actions = []string{"pause", "resume", "abort", "revert"}

// Status is a rollout with its audit log.
type Status struct {
	*Rollout
	Decisions []Decision `json:"decisions"`
}

// StartRequest is the body of POST /api/v1/rollouts. Plan is in
// ParsePlan's syntax ("" is the default plan); Previous "" is the newest
// published version below Version.
type StartRequest struct {
	Distribution string `json:"distribution"`
	Package      string `json:"package"`
	Version      string `json:"version"`
	Previous     string `json:"previous,omitempty"`
	Plan         string `json:"plan,omitempty"`
}

// ChangeRequest is the body of POST /api/v1/rollouts/{dist}/{pkg}/{version}/{action}.
type ChangeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// APIError is the JSON answer to a refused request, and the error Client
// returns for one.
type APIError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// Unwrap gives the package's sentinel of the refusal: ErrNotFound,
// ErrExists, ErrState or ErrPlan.
func (e *APIError) Unwrap() error {
	return map[string]error{"not_found": ErrNotFound, "exists": ErrExists, "state": ErrState, "plan": ErrPlan}[e.Code]
}

// apiRefusal is the status and code of an error of the controller.
func apiRefusal(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrExists):
		return http.StatusConflict, "exists"
	case errors.Is(err, ErrState):
		return http.StatusConflict, "state"
	case errors.Is(err, ErrPlan):
		return http.StatusBadRequest, "plan"
	}
	return http.StatusInternalServerError, "internal"
}

// OpenController gives an API request the controller to act with, and
// what to call when done (a server serialises the requests and its own
// ticks with it).
type OpenController func(ctx context.Context) (c *Controller, done func(), err error)

// APIHandlers returns the handlers of the rollout management API,
// pattern → handler, for a server to mount behind its own authorization:
//
//	GET  /api/v1/rollouts                                   → []Rollout
//	POST /api/v1/rollouts                                   StartRequest → 201 Rollout
//	GET  /api/v1/rollouts/{dist}/{pkg}/{version}            → Status
//	POST /api/v1/rollouts/{dist}/{pkg}/{version}/{action}   ChangeRequest → Rollout (pause, resume, abort, revert)
//
// Refusals are APIError: 404 not_found, 409 exists or state, 400 plan or
// bad_request, 500 internal.
func APIHandlers(open OpenController) map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + APIPath: open.handle(listRollouts),
		"GET " + APIPath + "/{dist}/{pkg}/{version}": open.handle(rolloutStatus),
		"POST " + APIPath: http.HandlerFunc(open.startRollout),
		"POST " + APIPath + "/{dist}/{pkg}/{version}/{action}": http.HandlerFunc(open.changeRollout),
	}
}

// apiCall is the work of one API request with the controller: the value
// to answer, its status on success, or a refusal.
type apiCall func(c *Controller, r *http.Request) (any, int, error)

// handle is the handler that runs fn for each request.
func (open OpenController) handle(fn apiCall) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		open.with(w, r, func(c *Controller) (any, int, error) { return fn(c, r) })
	})
}

// with opens the controller for r (503 unavailable when it cannot), runs
// fn with it and answers its value, or the refusal of its error.
func (open OpenController) with(w http.ResponseWriter, r *http.Request, fn func(c *Controller) (any, int, error)) {
	c, done, err := open(r.Context())
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	defer done()
	out, status, err := fn(c)
	if err != nil {
		st, code := apiRefusal(err)
		apiError(w, st, code, err.Error())
		return
	}
	apiJSON(w, status, out)
}

// rolloutKey is the key of the rollout named by the path of r.
func rolloutKey(r *http.Request) string {
	return r.PathValue("dist") + "/" + r.PathValue("pkg") + "/" + r.PathValue("version")
}

// listRollouts answers every rollout (an empty list, not null, when none).
func listRollouts(c *Controller, r *http.Request) (any, int, error) {
	list, err := c.Store.List(r.Context())
	if list == nil {
		list = []Rollout{}
	}
	return list, http.StatusOK, err
}

// rolloutStatus answers the rollout of the path with its audit log.
func rolloutStatus(c *Controller, r *http.Request) (any, int, error) {
	st, err := c.Status(r.Context(), rolloutKey(r))
	return st, http.StatusOK, err
}

// startRollout serves POST of a StartRequest: it checks the plan and the
// version before it opens the controller, then starts the rollout (201).
func (open OpenController) startRollout(w http.ResponseWriter, r *http.Request) {
	var req StartRequest
	if !decodeRequest(w, r, &req, `{"distribution":"bookworm","package":"hi","version":"1.4.1","plan":"quick"}`) {
		return
	}
	plan, err := ParsePlan(orDefault(req.Plan))
	if err != nil {
		apiError(w, http.StatusBadRequest, "plan", err.Error())
		return
	}
	if _, err := deb.ParseVersion(req.Version); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	open.with(w, r, func(c *Controller) (any, int, error) {
		prev, err := previousOf(c, r, req)
		if err != nil {
			return nil, 0, err
		}
		ro, err := c.Start(r.Context(), Rollout{Distribution: req.Distribution, Package: req.Package, Version: req.Version, Previous: prev, Plan: plan})
		return ro, http.StatusCreated, err
	})
}

// previousOf is the version a rollout of req reverts to: the one the
// request names, else the newest published below its version.
func previousOf(c *Controller, r *http.Request, req StartRequest) (string, error) {
	if req.Previous != "" {
		return req.Previous, nil
	}
	have, err := c.Publisher.Versions(r.Context(), req.Distribution, req.Package)
	if err != nil {
		return "", err
	}
	return PreviousVersion(have, req.Version), nil
}

// changeRollout serves POST of a ChangeRequest to the action of the
// path (pause, resume, abort or revert; the reason "by hand" when none).
func (open OpenController) changeRollout(w http.ResponseWriter, r *http.Request) {
	var req ChangeRequest
	if !decodeRequest(w, r, &req, `{"reason":"why"}`) {
		return
	}
	action := r.PathValue("action")
	open.with(w, r, func(c *Controller) (any, int, error) {
		do := c.Action(action)
		if do == nil {
			return nil, 0, fmt.Errorf("%w: no action %q (use pause, resume, abort or revert)", ErrNotFound, action)
		}
		if req.Reason == "" {
			req.Reason = "by hand"
		}
		ro, err := do(r.Context(), rolloutKey(r), req.Reason)
		return ro, http.StatusOK, err
	})
}

func orDefault(plan string) string {
	if plan == "" {
		return "default"
	}
	return plan
}

// Status returns the rollout with key and its audit log.
func (c *Controller) Status(ctx context.Context, key string) (*Status, error) {
	r, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	log, err := c.Store.Log(ctx, key)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = []Decision{}
	}
	return &Status{Rollout: r, Decisions: log}, nil
}

// Action returns the method that makes a change by hand (one of
// Actions), nil for another name.
func (c *Controller) Action(name string) func(ctx context.Context, key, reason string) (*Rollout, error) {
	switch name {
	case "pause":
		return c.Pause
	case "resume":
		return c.Resume
	case "abort":
		return c.Abort
	case "revert":
		return c.Revert
	}
	return nil
}

// PreviousVersion is the newest of have below version: the last good
// version a rollout of version keeps for a revert ("" when none).
func PreviousVersion(have []string, version string) string {
	prev := ""
	for _, v := range have {
		if deb.CompareLoose(v, version) < 0 && (prev == "" || deb.CompareLoose(v, prev) > 0) {
			prev = v
		}
	}
	return prev
}

// decodeRequest reads the JSON body of r into req (unknown fields
// refused; an empty body is the zero request); otherwise it answers 400
// (the body should look like shape) and returns false.
func decodeRequest(w http.ResponseWriter, r *http.Request, req any, shape string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil && !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "bad_request", "body: want JSON "+shape+": "+err.Error())
		return false
	}
	return true
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	apiJSON(w, status, &APIError{Status: status, Code: code, Message: msg})
}

func apiJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
