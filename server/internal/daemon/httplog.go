package daemon

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"
)

// Log keys of request logs.
const (
	logRequestID = "request_id"
	logMethod    = "method"
	logRoute     = "route"
	logPath      = "path"
	logStatus    = "status"
	logDuration  = "duration"
	logRemote    = "remote"
)

// RequestIDHeader carries a request's id: taken from a proxy in front when
// it sent one of a sane shape, made up otherwise, and returned to the
// client, so one id follows a request through proxy, server and logs.
const RequestIDHeader = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// quietPaths are probed every few seconds; their requests are logged at
// debug level only.
var quietPaths = map[string]bool{"/livez": true, "/readyz": true}

// logRequests logs every request with its id, and counts it by route.
// The query string is never logged: it may carry what a user searched for.
func logRequests(next http.Handler, logger *slog.Logger, count func(route string, status int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		rec := &statusRecorder{ResponseWriter: w}
		began := time.Now()
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if count != nil {
			count(r.Pattern, status)
		}
		level := slog.LevelInfo
		if quietPaths[r.URL.Path] {
			level = slog.LevelDebug
		}
		logger.Log(r.Context(), level, "http_request", logRequestID, id, logMethod, r.Method, logRoute, r.Pattern,
			logPath, r.URL.Path, logStatus, status, logDuration, time.Since(began), logRemote, r.RemoteAddr)
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status written. It passes Hijack through,
// for the websocket upgrade (recorded as 101), and Flush.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("daemon: connection cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err == nil && s.status == 0 {
		s.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
