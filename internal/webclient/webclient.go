// Package webclient is a browser for the server's web UI, driven from Go:
// a signed-in session (cookies kept by hand, the CSRF token of the forms),
// the first sign-in of a new account (one-time password, a password of its
// own, TOTP enrolment), form posts and file uploads, and a site page's live
// updates (Follower: the page's event stream and the fragment it fetches
// on each change). The end-to-end tests and the load generator both use it,
// so it lives under the module's root internal/.
package webclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/liggare/liggare/internal/totp"
)

// maxIdlePerHost keeps connections to the server for reuse: a client
// following many sites fetches many fragments at once.
const maxIdlePerHost = 64

// FirstPassword is the password FirstSignIn gives an account.
const FirstPassword = "armering och betong i regnet"

// Client is a browser signed in to the web UI. It keeps its cookies by
// hand: the session cookie is Secure, and a cookie jar would not send it
// over plain HTTP on loopback. It is safe for concurrent use.
type Client struct {
	hc *http.Client

	mu      sync.Mutex
	cookies map[string]string
}

// New returns a client with no session. It does not follow redirects:
// callers check where a form sends them.
func New() *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return &Client{
		hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		cookies: make(map[string]string),
	}
}

// CloseIdle closes the connections kept for reuse.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

func (c *Client) cookieHeader() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, v := range c.cookies {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, "; ")
}

// Request sends a request with the client's cookies; form, if not nil, is
// posted. It keeps the cookies the answer sets. The caller closes the
// body.
func (c *Client) Request(ctx context.Context, method, target string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	return c.send(ctx, method, target, body, "application/x-www-form-urlencoded")
}

func (c *Client) send(ctx context.Context, method, target string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
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

// Page sends a request, reads the whole answer, and checks its status and,
// unless location is empty, where it redirects to.
func (c *Client) Page(ctx context.Context, method, target string, form url.Values, status int, location string) (string, error) {
	resp, err := c.Request(ctx, method, target, form)
	if err != nil {
		return "", err
	}
	return readPage(resp, method, target, status, location)
}

// Upload posts a multipart form with the fields and one file, as a browser
// sends a file input, and checks the answer as Page does.
func (c *Client) Upload(ctx context.Context, target string, fields url.Values, fileField, fileName string, data []byte,
	status int, location string) (string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				return "", err
			}
		}
	}
	fw, err := mw.CreateFormFile(fileField, fileName)
	if err != nil {
		return "", err
	}
	if _, err := fw.Write(data); err != nil {
		return "", err
	}
	if err := mw.Close(); err != nil {
		return "", err
	}
	resp, err := c.send(ctx, http.MethodPost, target, &buf, mw.FormDataContentType())
	if err != nil {
		return "", err
	}
	return readPage(resp, http.MethodPost, target, status, location)
}

func readPage(resp *http.Response, method, target string, status int, location string) (string, error) {
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

// FormToken finds the CSRF token of a page's form. The server gives one
// token per session, so a token found once serves every later form.
func FormToken(page string) (string, error) {
	m := csrfTokenRe.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("no CSRF token in page:\n%.500s", page)
	}
	return m[1], nil
}

// FirstSignIn signs in at base as a new account does the first time: the
// one-time password, FirstPassword as its own, and TOTP enrolment, with
// the codes an authenticator app would show.
func (c *Client) FirstSignIn(ctx context.Context, base, email, oneTime string) error {
	steps := []struct {
		get, post string
		form      url.Values
		status    int
		location  string
	}{
		{"/login", "/login", url.Values{"email": {email}, "password": {oneTime}}, http.StatusSeeOther, "/account/password"},
		{"/account/password", "/account/password", url.Values{"password": {FirstPassword},
			"password2": {FirstPassword}}, http.StatusSeeOther, "/account/totp"},
		{"/account/totp", "/account/totp/begin", url.Values{}, http.StatusOK, ""},
	}
	var page string
	for _, s := range steps {
		p, err := c.Page(ctx, "GET", base+s.get, nil, http.StatusOK, "")
		if err != nil {
			return err
		}
		tok, err := FormToken(p)
		if err != nil {
			return err
		}
		s.form.Set("csrf_token", tok)
		if page, err = c.Page(ctx, "POST", base+s.post, s.form, s.status, s.location); err != nil {
			return err
		}
	}
	m := totpSecretRe.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("TOTP enrolment page shows no secret:\n%.500s", page)
	}
	secret := m[1]
	code, err := totp.Code(secret, time.Now())
	if err != nil {
		return err
	}
	tok, err := FormToken(page)
	if err != nil {
		return err
	}
	_, err = c.Page(ctx, "POST", base+"/account/totp",
		url.Values{"code": {code}, "secret": {secret}, "csrf_token": {tok}}, http.StatusOK, "")
	return err
}
