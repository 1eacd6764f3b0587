package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

//go:embed templates static
var files embed.FS

// pages holds one template set per page: the layout, every partial and the
// page's own file.
type pages struct {
	sets map[string]*template.Template
	// static maps a static file's name to its content hash, for cache
	// busting URLs.
	static map[string]string
}

func loadPages() (*pages, error) {
	pg := &pages{sets: make(map[string]*template.Template), static: make(map[string]string)}
	names, err := fs.Glob(files, "templates/pages/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	for _, file := range names {
		name := strings.TrimSuffix(path.Base(file), ".html")
		t, err := template.New(name).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials/*.html", file)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		pg.sets[name] = t
	}
	statics, err := fs.Glob(files, "static/*")
	if err != nil {
		return nil, fmt.Errorf("web: static: %w", err)
	}
	for _, f := range statics {
		b, err := files.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("web: static: %w", err)
		}
		pg.static[path.Base(f)] = strconv.FormatUint(fnv64(b), 36)
	}
	return pg, nil
}

func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// funcs are the template functions that need no request.
var funcs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
	"deref_s": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
}

// view is the data of every page: the request (language, session, time
// formats) and the page's own data in D.
type view struct {
	rc *reqCtx
	// Title is the page title, already translated.
	Title string
	// Flash is a message of a completed action; Error one of a failed one.
	Flash, Error string
	// D is the page's own data.
	D any
}

// T translates key.
func (v view) T(key string, args ...any) string { return v.rc.T(key, args...) }

// Lang is the page's language code.
func (v view) Lang() string { return string(v.rc.Lang) }

// OtherLang is the language the page offers to switch to.
func (v view) OtherLang() string {
	if v.rc.Lang == langEN {
		return string(langSV)
	}
	return string(langEN)
}

// CSRF is a token for the page's forms.
func (v view) CSRF() string { return v.rc.CSRF() }

// CSRFField is the form field name of the token.
func (v view) CSRFField() string { return account.CSRFField }

// LoggedIn reports whether a complete session is showing the page.
func (v view) LoggedIn() bool { return v.rc.HasSession }

// UserName is the logged-in user's name; "" for an inspector.
func (v view) UserName() string { return v.rc.User.Name }

// Inspector reports whether an inspector is looking.
func (v view) Inspector() bool { return v.rc.P.Inspector != nil }

// Operator reports whether an operator is looking.
func (v view) Operator() bool { return account.IsOperator(v.rc.P) }

// Static returns the URL of a static file, with its content hash.
func (v view) Static(name string) string {
	return "/static/" + name + "?v=" + v.rc.s.pages.static[name]
}

// Can reports whether the principal may do the named action at the
// request's site.
func (v view) Can(action string) bool {
	for _, a := range account.Actions {
		if a.String() == action {
			return v.rc.Access.Allowed[a]
		}
	}
	return false
}

// Site is the request's site (on site routes).
func (v view) Site() siteInfo { return v.rc.Site }

// time returns t in the pages' time zone; ok is false for a nil or zero
// time.
func (v view) time(t any) (time.Time, bool) {
	var tt time.Time
	switch x := t.(type) {
	case time.Time:
		tt = x
	case *time.Time:
		if x == nil {
			return time.Time{}, false
		}
		tt = *x
	default:
		return time.Time{}, false
	}
	if tt.IsZero() {
		return time.Time{}, false
	}
	return tt.In(v.rc.s.cfg.Location), true
}

// Clock formats a time as "07:15", or "–" for none.
func (v view) Clock(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return "–"
	}
	return tt.Format("15:04")
}

// DateTime formats a time as "2026-03-02 07:15" (Swedish standard), or
// "–" for none. A time today shows as the clock alone.
func (v view) DateTime(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return "–"
	}
	now := v.rc.Now.In(v.rc.s.cfg.Location)
	if tt.Year() == now.Year() && tt.YearDay() == now.YearDay() {
		return v.T("time.today") + " " + tt.Format("15:04")
	}
	return tt.Format("2006-01-02 15:04")
}

// FullTime formats a time as "2026-03-02 07:15:04".
func (v view) FullTime(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return "–"
	}
	return tt.Format("2006-01-02 15:04:05")
}

// ISO formats a time for a <time datetime> attribute.
func (v view) ISO(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return ""
	}
	return tt.Format(time.RFC3339)
}

// InputTime formats a time for a datetime-local input, "" for none.
func (v view) InputTime(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return ""
	}
	return tt.Format("2006-01-02T15:04")
}

// Day formats a date as "måndag 2 mars 2026" / "Monday 2 March 2026".
func (v view) Day(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return "–"
	}
	return formatDay(v.rc.Lang, tt)
}

// Ago says how long ago t was: "3 min sedan".
func (v view) Ago(t any) string {
	tt, ok := v.time(t)
	if !ok {
		return v.T("time.never")
	}
	d := v.rc.Now.Sub(tt)
	switch {
	case d < time.Minute:
		return v.T("time.just_now")
	case d < time.Hour:
		return v.T("time.min_ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return v.T("time.hours_ago", int(d/time.Hour))
	}
	return v.T("time.days_ago", int(d/(24*time.Hour)))
}

// Duration formats d as "7 h 30 min".
func (v view) Duration(from, to any) string {
	a, ok1 := v.time(from)
	b, ok2 := v.time(to)
	if !ok1 || !ok2 || b.Before(a) {
		return "–"
	}
	d := b.Sub(a).Round(time.Minute)
	h, m := int(d/time.Hour), int((d%time.Hour)/time.Minute)
	if h == 0 {
		return fmt.Sprintf("%d min", m)
	}
	return fmt.Sprintf("%d h %02d min", h, m)
}

// render writes a page with status.
func (s *Server) render(w http.ResponseWriter, rc *reqCtx, status int, page string, v view) {
	s.execute(w, rc, status, page, "layout", v)
}

// renderFragment writes one named template of a page's set, without the
// layout.
func (s *Server) renderFragment(w http.ResponseWriter, rc *reqCtx, page, name string, v view) {
	s.execute(w, rc, http.StatusOK, page, name, v)
}

func (s *Server) execute(w http.ResponseWriter, rc *reqCtx, status int, page, name string, v view) {
	v.rc = rc
	t := s.pages.sets[page]
	if t == nil {
		s.log.Error("web_template_missing", "page", page)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	// Render into a buffer, so that an error does not leave half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		s.log.Error("web_template_failed", "page", page, logErr, err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError turns a handler's error into a page.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		if r.Context().Err() != nil {
			return // the client went away
		}
		s.log.Error("web_handler_failed", logRoute, r.Pattern, logErr, err)
		he = &httpError{http.StatusInternalServerError, "error.internal"}
	}
	s.render(w, rc, he.status, "error", view{Title: rc.T("error.title"), Error: rc.T(he.key), D: he.status})
}

// With returns v showing d, for a template that renders a part of a page
// (the live fragment) with the page's helpers.
func (v view) With(d any) view {
	v.D = d
	return v
}

// CorrLink is the URL of the site's corrections page with a form of kind
// filled in for a person (and a start time).
func (v view) CorrLink(kind string, personID int64, start any) string {
	return correctionLink(v.rc.Site.ID, kind, personID, v.InputTime(start))
}

// Num shows a count that may be unknown.
func (v view) Num(n *int64) string {
	if n == nil {
		return "–"
	}
	return strconv.FormatInt(*n, 10)
}

// Offset shows a clock offset in microseconds as "+1,2 s" (Swedish decimal
// comma) or "-0,3 s".
func (v view) Offset(us *int64) string {
	if us == nil {
		return "–"
	}
	s := fmt.Sprintf("%+.1f s", float64(*us)/1e6)
	if v.rc.Lang == langSV {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// PersonLink is the URL of a person's history in the inspector's view of
// the request's site, at a moment (a datetime-local value, "" for now).
// The person is named by id, never by an identity number.
func (v view) PersonLink(personID int64, asof string) string {
	u := fmt.Sprintf("/sites/%d/inspect/persons/%d", v.rc.Site.ID, personID)
	if asof != "" {
		u += "?" + url.Values{"asof": {asof}}.Encode()
	}
	return u
}
