package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

// webClient is a browser signed in to the web UI of the servers. It keeps
// its cookies by hand: the session cookie is Secure, and a cookie jar would
// not send it over the test's plain HTTP.
type webClient struct {
	hc *http.Client

	mu      sync.Mutex
	cookies map[string]string
}

func newWebClient() *webClient {
	return &webClient{
		hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		cookies: make(map[string]string),
	}
}

func (c *webClient) cookieHeader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, v := range c.cookies {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

// request sends a request with the client's cookies; form, if not nil, is
// posted. It keeps the cookies the answer sets.
func (c *webClient) request(ctx context.Context, method, target string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if h := c.cookieHeader(); h != "" {
		req.Header.Set("Cookie", h)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	c.mu.Unlock()
	return resp, nil
}

// page sends a request, reads the whole answer, and checks its status and,
// unless location is empty, where it redirects to.
func (c *webClient) page(ctx context.Context, method, target string, form url.Values, status int, location string) (string, error) {
	resp, err := c.request(ctx, method, target, form)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != status || (location != "" && resp.Header.Get("Location") != location) {
		return "", fmt.Errorf("%s %s: status %d, Location %q; want %d, %q\n%.500s",
			method, target, resp.StatusCode, resp.Header.Get("Location"), status, location, b)
	}
	return string(b), nil
}

var (
	csrfTokenRe  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	totpSecretRe = regexp.MustCompile(`id="secret">([A-Z2-7]+)<`)
)

// formToken finds the CSRF token of a page's form.
func formToken(page string) (string, error) {
	m := csrfTokenRe.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("no CSRF token in page:\n%.500s", page)
	}
	return m[1], nil
}

// firstSignIn signs in at base as a new admin does the first time: the
// one-time password, a new password of its own, and TOTP enrolment.
func (c *webClient) firstSignIn(ctx context.Context, base, email, oneTime string) error {
	steps := []struct {
		get, post string
		form      url.Values
		status    int
		location  string
	}{
		{"/login", "/login", url.Values{"email": {email}, "password": {oneTime}}, http.StatusSeeOther, "/account/password"},
		{"/account/password", "/account/password", url.Values{"password": {"armering och betong i regnet"},
			"password2": {"armering och betong i regnet"}}, http.StatusSeeOther, "/account/totp"},
		{"/account/totp", "/account/totp/begin", url.Values{}, http.StatusOK, ""},
	}
	var page string
	for _, s := range steps {
		p, err := c.page(ctx, "GET", base+s.get, nil, http.StatusOK, "")
		if err != nil {
			return err
		}
		tok, err := formToken(p)
		if err != nil {
			return err
		}
		s.form.Set("csrf_token", tok)
		if page, err = c.page(ctx, "POST", base+s.post, s.form, s.status, s.location); err != nil {
			return err
		}
	}
	m := totpSecretRe.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("TOTP enrolment page shows no secret:\n%.500s", page)
	}
	code, err := totpNow(m[1], time.Now())
	if err != nil {
		return err
	}
	tok, err := formToken(page)
	if err != nil {
		return err
	}
	_, err = c.page(ctx, "POST", base+"/account/totp",
		url.Values{"code": {code}, "secret": {m[1]}, "csrf_token": {tok}}, http.StatusOK, "")
	return err
}

// totpNow is what an authenticator app shows at now for a base32 secret
// (RFC 6238 with SHA-1, the parameters account enrols).
func totpNow(secret string, now time.Time) (string, error) {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return "", fmt.Errorf("TOTP secret %q: %w", secret, err)
	}
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(now.Unix()/int64(account.TOTPStep/time.Second)))
	h := hmac.New(sha1.New, key)
	h.Write(counter[:])
	mac := h.Sum(nil)
	at := mac[len(mac)-1] & 0xf
	v := binary.BigEndian.Uint32(mac[at:at+4]) & 0x7fffffff
	mod := uint32(1)
	for range account.TOTPDigits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", account.TOTPDigits, v%mod), nil
}

// liveFollower holds a site page's event stream open on one replica, as
// the page's EventSource does, opening it again whenever the replica comes
// back, and counts the "change" events.
type liveFollower struct {
	rep  *replica
	site int64
	web  *webClient

	changes atomic.Int64
	signal  chan struct{} // room for one: a change event came
	open    atomic.Bool   // a stream is open (its preamble was read)
	opened  atomic.Int64  // streams opened

	mu  sync.Mutex
	err error // the first refusal of a stream, which a signed-in page never gets
}

func newLiveFollower(rep *replica, site int64, web *webClient) *liveFollower {
	return &liveFollower{rep: rep, site: site, web: web, signal: make(chan struct{}, 1)}
}

// run follows until ctx ends.
func (f *liveFollower) run(ctx context.Context) {
	for ctx.Err() == nil {
		if base := f.rep.url(); base != "" {
			f.stream(ctx, base)
		}
		sleep(ctx, 50*time.Millisecond) // the replica is down or restarting
	}
}

func (f *liveFollower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *liveFollower) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// stream reads one event stream until it ends.
func (f *liveFollower) stream(ctx context.Context, base string) {
	resp, err := f.web.request(ctx, "GET", fmt.Sprintf("%s/sites/%d/events", base, f.site), nil)
	if err != nil {
		return // the replica went away
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.fail(fmt.Errorf("%s: event stream answered %s", f.rep.name, resp.Status))
		return
	}
	defer f.open.Store(false)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == ": live":
			// Written after the stream subscribed to the site's changes.
			f.opened.Add(1)
			f.open.Store(true)
		case line == "event: change":
			f.changes.Add(1)
			select {
			case f.signal <- struct{}{}:
			default:
			}
		case strings.HasPrefix(line, "event: expired"):
			f.fail(fmt.Errorf("%s: the session expired", f.rep.name))
		}
	}
}

// fragment fetches the live part of the site page from the replica, as the
// page does on each change event.
func (f *liveFollower) fragment(ctx context.Context) (string, error) {
	base := f.rep.url()
	if base == "" {
		return "", fmt.Errorf("%s is down", f.rep.name)
	}
	return f.web.page(ctx, "GET", fmt.Sprintf("%s/sites/%d/onsite", base, f.site), nil, http.StatusOK, "")
}
