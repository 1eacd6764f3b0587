package inspect

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/liggare/liggare/terminal/internal/agent"
)

// Paths the handler serves; mount it at Prefix ("/inspect/").
const (
	Prefix     = "/inspect/"
	cookieName = "liggare_inspect"
	csrfField  = "csrf"
)

// Session limits.
const (
	// SessionIdle ends an inspection session left alone.
	SessionIdle = 15 * time.Minute
	// SessionMax ends any inspection session.
	SessionMax = 2 * time.Hour
	// maxSessions bounds the sessions kept; the oldest goes first.
	maxSessions = 8
	// maxFormBytes bounds a posted form (a PIN and a token).
	maxFormBytes = 4 << 10
)

// Log keys.
const (
	logPresent = "present"
	logTaps    = "taps"
	logFiles   = "files"
)

//go:embed templates
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"dir":    directionText,
	"answer": agent.KioskText,
	"inc":    func(i int) int { return i + 1 },
}).ParseFS(templateFS, "templates/*.html"))

// HandlerOptions configures NewHandler.
type HandlerOptions struct {
	// OutDir, when set, is where "Spara på terminalen" writes the CSV and
	// HTML files (e.g. /var/lib/liggare/inspect, or a mounted USB stick).
	OutDir string
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler serves the inspection pages under Prefix on the kiosk's loopback
// listener: a PIN form, then the on-site list, its CSV and printable HTML
// as downloads, and saving both to OutDir. It needs no network and loads
// nothing from outside: the pages carry their own styles.
type Handler struct {
	src   *Sources
	guard *Guard
	opts  HandlerOptions
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	csrf    string
	created time.Time
	used    time.Time
}

// NewHandler returns the inspection pages over src, behind guard.
func NewHandler(src *Sources, guard *Guard, opts HandlerOptions) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{src: src, guard: guard, opts: opts, log: opts.Logger, now: opts.Now,
		mux: http.NewServeMux(), sessions: make(map[string]*session)}
	h.mux.HandleFunc("GET /inspect/{$}", h.page)
	h.mux.HandleFunc("POST /inspect/login", h.login)
	h.mux.HandleFunc("POST /inspect/logout", h.logout)
	h.mux.HandleFunc("GET /inspect/narvaro.csv", h.csv)
	h.mux.HandleFunc("GET /inspect/narvaro.html", h.html)
	h.mux.HandleFunc("POST /inspect/save", h.save)
	h.mux.HandleFunc("GET /inspect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	})
	return h
}

// ServeHTTP refuses requests that did not come from this machine's own
// browser (another Host: DNS rebinding; another Origin: a page elsewhere
// posting a form), then serves the pages.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !LoopbackHost(r.Host) {
		http.Error(w, "Fel värdnamn / wrong host", http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		http.Error(w, "Förfrågan från en annan sida avvisas / cross-site request refused", http.StatusForbidden)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.mux.ServeHTTP(w, r)
}

// LoopbackHost reports whether a Host header names this machine: the kiosk
// pages answer nothing else.
func LoopbackHost(host string) bool {
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin reports whether a form post came from these pages: by
// Sec-Fetch-Site where the browser sends it (Chromium does), else by
// Origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "http://"+r.Host
}

type loginData struct {
	Enabled bool
	Error   string
	ErrorEN string
}

type pageData struct {
	R       *Report
	CSRF    string
	Toolbar bool
	CanSave bool
	Saved   []string
	SaveErr string
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	s := h.session(r)
	if s == nil {
		h.render(w, http.StatusOK, "login.html", loginData{Enabled: h.guard.Enabled()})
		return
	}
	h.report(w, r, s, nil, "")
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request, s *session, saved []string, saveErr string) {
	rep, err := h.src.Report()
	if err != nil {
		h.log.Error("inspect_report_failed", logErr, err)
		http.Error(w, "Listan kunde inte tas fram / the list could not be made", http.StatusInternalServerError)
		return
	}
	h.log.Info("inspect_report", logPresent, len(rep.Present), logTaps, len(rep.Taps))
	h.render(w, http.StatusOK, "report.html", pageData{R: rep, CSRF: s.csrf, Toolbar: true, CanSave: h.opts.OutDir != "",
		Saved: saved, SaveErr: saveErr})
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("inspect_template_failed", logErr, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	err := h.guard.Check(r.PostFormValue("pin"))
	var throttled *ThrottledError
	switch {
	case err == nil:
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		h.log.Warn("inspect_pin_throttled")
		h.render(w, http.StatusTooManyRequests, "login.html", loginData{Enabled: true,
			Error:   fmt.Sprintf("För många felaktiga försök. Vänta %d sekunder och försök igen.", secs),
			ErrorEN: fmt.Sprintf("Too many wrong attempts. Wait %d seconds and try again.", secs)})
		return
	case errors.Is(err, ErrNoPIN):
		h.render(w, http.StatusForbidden, "login.html", loginData{})
		return
	default:
		h.log.Warn("inspect_pin_wrong")
		h.render(w, http.StatusUnauthorized, "login.html", loginData{Enabled: true,
			Error: "Fel PIN-kod.", ErrorEN: "Wrong PIN."})
		return
	}
	token, _, err := h.newSession()
	if err != nil {
		h.log.Error("inspect_session_failed", logErr, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.log.Info("inspect_login")
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(SessionMax / time.Second)})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if s := h.checked(w, r); s != nil {
		h.mu.Lock()
		for k, v := range h.sessions {
			if v == s {
				delete(h.sessions, k)
			}
		}
		h.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// files returns the on-site list as CSV and as a printable HTML page.
func (h *Handler) files() (rep *Report, csvBody, htmlBody []byte, err error) {
	if rep, err = h.src.Report(); err != nil {
		return nil, nil, nil, err
	}
	if csvBody, err = rep.CSV(); err != nil {
		return nil, nil, nil, err
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "report.html", pageData{R: rep}); err != nil {
		return nil, nil, nil, fmt.Errorf("inspect: html: %w", err)
	}
	return rep, csvBody, buf.Bytes(), nil
}

func (h *Handler) filename(rep *Report, ext string) string {
	id := rep.TerminalID
	if id == "" {
		id = "terminal"
	}
	return fmt.Sprintf("narvaro-%s-%s.%s", safeName(id), rep.GeneratedAt.In(rep.Location).Format("20060102-150405"), ext)
}

func (h *Handler) csv(w http.ResponseWriter, r *http.Request) {
	h.download(w, r, "csv", "text/csv; charset=utf-8; header=present")
}

func (h *Handler) html(w http.ResponseWriter, r *http.Request) {
	h.download(w, r, "html", "text/html; charset=utf-8")
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request, ext, ctype string) {
	if h.session(r) == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	rep, csvBody, htmlBody, err := h.files()
	if err != nil {
		h.log.Error("inspect_report_failed", logErr, err)
		http.Error(w, "Listan kunde inte tas fram / the list could not be made", http.StatusInternalServerError)
		return
	}
	body := csvBody
	if ext == "html" {
		body = htmlBody
	}
	h.log.Info("inspect_download", logFiles, ext, logPresent, len(rep.Present))
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+h.filename(rep, ext)+`"`)
	w.Write(body)
}

func (h *Handler) save(w http.ResponseWriter, r *http.Request) {
	s := h.checked(w, r)
	if s == nil {
		return
	}
	if h.opts.OutDir == "" {
		http.NotFound(w, r)
		return
	}
	rep, csvBody, htmlBody, err := h.files()
	var saved []string
	if err == nil {
		for _, f := range []struct {
			ext  string
			body []byte
		}{{"csv", csvBody}, {"html", htmlBody}} {
			path := filepath.Join(h.opts.OutDir, h.filename(rep, f.ext))
			if err = writeFile(path, f.body); err != nil {
				break
			}
			saved = append(saved, path)
		}
	}
	if err != nil {
		h.log.Error("inspect_save_failed", logErr, err)
		h.report(w, r, s, saved, "Filerna kunde inte sparas / the files could not be saved: "+err.Error())
		return
	}
	h.log.Info("inspect_saved", logFiles, saved, logPresent, len(rep.Present))
	h.report(w, r, s, saved, "")
}

// writeFile writes a file durably: a temporary file, fsync'd, renamed.
func writeFile(path string, body []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".narvaro-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (h *Handler) newSession() (string, *session, error) {
	token, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	now := h.now()
	s := &session{csrf: csrf, created: now, used: now}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(now)
	for len(h.sessions) >= maxSessions {
		var oldest string
		for k, v := range h.sessions {
			if oldest == "" || v.created.Before(h.sessions[oldest].created) {
				oldest = k
			}
		}
		delete(h.sessions, oldest)
	}
	h.sessions[token] = s
	return token, s, nil
}

// expire drops ended sessions; h.mu is held.
func (h *Handler) expire(now time.Time) {
	for k, s := range h.sessions {
		if now.Sub(s.used) > SessionIdle || now.Sub(s.created) > SessionMax {
			delete(h.sessions, k)
		}
	}
}

// session returns the request's live session, or nil.
func (h *Handler) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(now)
	s := h.sessions[c.Value]
	if s != nil {
		s.used = now
	}
	return s
}

// checked returns the session of a form post whose CSRF token matches, or
// answers the request itself and returns nil.
func (h *Handler) checked(w http.ResponseWriter, r *http.Request) *session {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return nil
	}
	s := h.session(r)
	if s == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue(csrfField)), []byte(s.csrf)) != 1 {
		http.Error(w, "Ogiltigt formulär / invalid form", http.StatusForbidden)
		return nil
	}
	return s
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("inspect: token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// directionText names a direction in Swedish and English.
func directionText(d Direction) string {
	switch d {
	case DirIn:
		return "In / in"
	case DirOut:
		return "Ut / out"
	case DirRepeat:
		return "Upprepad / repeat"
	}
	return ""
}
