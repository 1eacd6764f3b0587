package enroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/liggare/liggare/server/internal/auth"
)

// Log keys.
const (
	logTerminal = "terminal_id"
	logSite     = "site_ident"
	logCode     = "code"
	logErr      = "err"
	logRemote   = "remote"
)

// Failure budget: a code has 50 bits, and guessing one online is what the
// budget makes hopeless. Every refused attempt takes a token; tokens come
// back at failureRefill a second. While none is left, every request is
// answered 429: an attacker can delay enrollments, not guess codes.
const (
	failureBurst  = 30
	failureRefill = 1.0
)

// Handler serves EnrollPath, RotatePath and ConfirmPath.
type Handler struct {
	store  *Store
	logger *slog.Logger
	// OnResult, when set, is called with the outcome of every request:
	// the path and "ok" or an ErrorCode* (for metrics).
	OnResult func(path, result string)

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewHandler returns a Handler on store. logger may be nil.
func NewHandler(store *Store, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: store, logger: logger, tokens: failureBurst}
}

// Register adds the handler's routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+EnrollPath, h.enroll)
	mux.HandleFunc("POST "+RotatePath, h.rotate)
	mux.HandleFunc("POST "+ConfirmPath, h.confirm)
}

func (h *Handler) enroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if !h.begin(w, r, &req) {
		return
	}
	resp, err := h.store.Redeem(r.Context(), req)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.logger.Info("terminal_enrolled", logTerminal, resp.TerminalID, logSite, resp.SiteIdent,
		"direction", resp.Direction, "reenrolled", resp.Reenrolled, logRemote, r.RemoteAddr)
	h.reply(w, r, resp)
}

func (h *Handler) rotate(w http.ResponseWriter, r *http.Request) {
	var req RotateRequest
	cred, ok := h.beginWithCredential(w, r, &req)
	if !ok {
		return
	}
	resp, err := h.store.Rotate(r.Context(), cred, req)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.logger.Info("terminal_credential_rotated", logTerminal, terminalOf(cred), logRemote, r.RemoteAddr)
	h.reply(w, r, resp)
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) {
	var req RotateRequest
	cred, ok := h.beginWithCredential(w, r, &req)
	if !ok {
		return
	}
	resp, err := h.store.Confirm(r.Context(), cred, req)
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	h.logger.Info("terminal_credential_confirmed", logTerminal, resp.TerminalID, logRemote, r.RemoteAddr)
	h.reply(w, r, resp)
}

// beginWithCredential is begin for a request made with the terminal's
// current credential (rotation and its confirmation): it also takes the
// bearer credential, refusing a request without one.
func (h *Handler) beginWithCredential(w http.ResponseWriter, r *http.Request, v any) (string, bool) {
	if !h.begin(w, r, v) {
		return "", false
	}
	cred, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		h.refuse(w, r, auth.ErrUnauthorized)
		return "", false
	}
	return cred, true
}

// begin checks the failure budget and decodes the body into v.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, v any) bool {
	if !h.allowed() {
		h.error(w, r, http.StatusTooManyRequests, ErrorCodeRateLimited, "too many failed attempts; try again in a minute")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		h.spend()
		h.error(w, r, http.StatusBadRequest, ErrorCodeMalformed, fmt.Sprintf("request body: %v (JSON of at most %d bytes)", err, MaxRequestBytes))
		return false
	}
	return true
}

// allowed reports whether a token is left, refilling first.
func (h *Handler) allowed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if !h.last.IsZero() {
		h.tokens = min(failureBurst, h.tokens+now.Sub(h.last).Seconds()*failureRefill)
	}
	h.last = now
	return h.tokens >= 1
}

func (h *Handler) spend() {
	h.mu.Lock()
	h.tokens = max(0, h.tokens-1)
	h.mu.Unlock()
}

// refuse answers an error from the store.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusServiceUnavailable, ErrorCodeUnavailable
	msg := "the server cannot enroll terminals now; try again later"
	switch {
	case errors.Is(err, ErrCodeInvalid):
		status, code, msg = http.StatusNotFound, ErrorCodeBadCode, "enrollment code unknown: check it, or ask the site manager for a new one"
	case errors.Is(err, ErrCodeUsed):
		status, code, msg = http.StatusConflict, ErrorCodeUsed, "enrollment code already used: ask the site manager for a new one"
	case errors.Is(err, ErrCodeExpired):
		status, code, msg = http.StatusGone, ErrorCodeExpired, "enrollment code expired: ask the site manager for a new one"
	case errors.Is(err, ErrSignature):
		status, code, msg = http.StatusForbidden, ErrorCodeSignature, "signature does not verify with the terminal's key"
	case errors.Is(err, ErrTerminalID):
		status, code, msg = http.StatusConflict, ErrorCodeTerminalID, err.Error()
	case errors.Is(err, ErrTerminalTaken):
		status, code, msg = http.StatusConflict, ErrorCodeTerminalUsed, "this terminal id is in use by another organisation: choose another"
	case errors.Is(err, ErrNoKey):
		status, code, msg = http.StatusForbidden, ErrorCodeNoKey, err.Error()
	case errors.Is(err, ErrInvalid):
		status, code, msg = http.StatusBadRequest, ErrorCodeMalformed, err.Error()
	case errors.Is(err, auth.ErrUnauthorized):
		status, code, msg = http.StatusUnauthorized, ErrorCodeUnauthorized, "credential unknown or revoked"
	default:
		h.logger.Error("enroll_failed", logErr, err, "path", r.URL.Path)
		h.error(w, r, status, code, msg)
		return
	}
	h.spend()
	h.logger.Warn("enroll_refused", logCode, code, "path", r.URL.Path, logRemote, r.RemoteAddr)
	h.error(w, r, status, code, msg)
}

func (h *Handler) error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if h.OnResult != nil {
		h.OnResult(r.URL.Path, code)
	}
	writeJSON(w, status, ErrorResponse{Code: code, Error: msg})
}

func (h *Handler) reply(w http.ResponseWriter, r *http.Request, v any) {
	if h.OnResult != nil {
		h.OnResult(r.URL.Path, "ok")
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// A credential is in the body: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// terminalOf returns the terminal id part of a credential, for logs.
func terminalOf(cred string) string {
	for i := 0; i < len(cred); i++ {
		if cred[i] == '.' {
			return cred[:i]
		}
	}
	return ""
}
