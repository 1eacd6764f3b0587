package account

import (
	"errors"
	"testing"
	"time"
)

func TestSessionLifetime(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, _ := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	tok, sess, err := w.store.NewSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || sess.UserID != id || sess.GrantID != 0 || !sess.ExpiresAt.Equal(w.clock.Now().Add(12*time.Hour)) {
		t.Fatalf("NewSession = %q, %+v", tok, sess)
	}
	// Only the token's SHA-256 is stored.
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE token_sha256 = $1`, hashToken(tok)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stored token hash: %d, %v", n, err)
	}
	check := func(what string, wantOK bool) Session {
		t.Helper()
		got, err := w.store.Session(ctx, tok)
		if wantOK && (err != nil || got.ID != sess.ID || got.UserID != id) {
			t.Fatalf("%s: Session = %+v, %v; want session %d", what, got, err, sess.ID)
		}
		if !wantOK && !errors.Is(err, ErrNoSession) {
			t.Fatalf("%s: Session = %+v, %v; want ErrNoSession", what, got, err)
		}
		return got
	}
	check("new", true)
	// A use within TouchEvery writes nothing; after it, last_seen moves.
	w.clock.Advance(30 * time.Second)
	if got := check("30 s later", true); !got.LastSeen.Equal(sess.LastSeen) {
		t.Errorf("LastSeen moved after 30 s: %v -> %v", sess.LastSeen, got.LastSeen)
	}
	// Idle timeout slides: used every 29 minutes it lives on...
	for i := range 24 {
		w.clock.Advance(29 * time.Minute)
		if i == 23 {
			// ...until the absolute end, 12 h after login (24*29 min
			// + 30 s = 11 h 36.5 min; the next step passes 12 h).
			break
		}
		got := check("used within the idle timeout", true)
		if !got.LastSeen.Equal(w.clock.Now()) || !got.IdleExpiresAt.Equal(earlier(w.clock.Now().Add(30*time.Minute), sess.ExpiresAt)) {
			t.Fatalf("after use: LastSeen %v IdleExpiresAt %v, now %v", got.LastSeen, got.IdleExpiresAt, w.clock.Now())
		}
	}
	check("at 11 h 36 min", true)
	w.clock.Advance(29 * time.Minute)
	check("past the absolute end", false)

	// Idle expiry on its own.
	tok, sess, err = w.store.NewSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(29*time.Minute + 59*time.Second)
	check("just within the idle timeout", true)
	w.clock.Advance(30 * time.Minute)
	check("idle 30 min", false)

	if _, err := w.store.Session(ctx, ""); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session(\"\") = %v", err)
	}
	if _, err := w.store.Session(ctx, "no-such-token"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session(unknown) = %v", err)
	}
}

func TestRevoke(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, p := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	newSession := func() string {
		tok, _, err := w.store.NewSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	live := func(tok string) bool {
		_, err := w.store.Session(ctx, tok)
		if err != nil && !errors.Is(err, ErrNoSession) {
			t.Fatal(err)
		}
		return err == nil
	}
	a, b, c := newSession(), newSession(), newSession()
	if err := w.store.Revoke(ctx, a); err != nil {
		t.Fatal(err)
	}
	if live(a) || !live(b) || !live(c) {
		t.Errorf("after Revoke(a): live a=%v b=%v c=%v, want false true true", live(a), live(b), live(c))
	}
	if err := w.store.Revoke(ctx, a); err != nil {
		t.Errorf("Revoke(again) = %v", err)
	}
	// Another tenant's admin may not log her out.
	_, elAdmin := w.user(t, "admin@el.se", w.el, RoleOrgAdmin)
	if _, err := w.store.RevokeAllForUser(ctx, elAdmin, id); !errors.Is(err, ErrForbidden) {
		t.Errorf("RevokeAllForUser(by another tenant) = %v, want ErrForbidden", err)
	}
	n, err := w.store.RevokeAllForUser(ctx, p, id)
	if err != nil || n != 2 || live(b) || live(c) {
		t.Errorf("RevokeAllForUser = %d, %v; live b=%v c=%v", n, err, live(b), live(c))
	}
	if es := w.actions(t, w.bygg, ActionSessionsRevokedAll); len(es) != 1 || es[0].Detail["sessions"] != float64(2) {
		t.Errorf("audit of RevokeAllForUser = %+v", es)
	}
	// A password change ends every session; so does disabling the user.
	d := newSession()
	if err := w.store.SetPassword(ctx, p, id, "ett nytt och längre lösen"); err != nil {
		t.Fatal(err)
	}
	if live(d) {
		t.Error("session survived a password change")
	}
	e := newSession()
	if _, err := w.pool.Exec(ctx, `UPDATE users SET disabled_at = $2 WHERE user_id = $1`, id, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if live(e) {
		t.Error("session of a disabled user is live")
	}
	if _, _, err := w.store.NewSession(ctx, id); !errors.Is(err, ErrDisabled) {
		t.Errorf("NewSession(disabled) = %v, want ErrDisabled", err)
	}
}

func TestCSRF(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, _ := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	tok, sess, err := w.store.NewSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := w.store.NewSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The session as read back has the same secret as at creation.
	loaded, err := w.store.Session(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := CSRFToken(sess), CSRFToken(loaded)
	if t1 == t2 {
		t.Error("two CSRF tokens are equal: not masked per call")
	}
	for _, tc := range []struct {
		name  string
		sess  Session
		token string
		want  bool
	}{
		{"fresh token", sess, t1, true},
		{"token of the loaded session", sess, t2, true},
		{"checked against the loaded session", loaded, t1, true},
		{"another session's token", other, t1, false},
		{"empty", sess, "", false},
		{"not base64", sess, "!!!!", false},
		{"truncated", sess, t1[:len(t1)-2], false},
		{"flipped", sess, flip(t1), false},
		{"zero session", Session{}, t1, false},
		{"very long", sess, t1 + t1 + t1 + t1 + t1, false},
	} {
		if got := CheckCSRF(tc.sess, tc.token); got != tc.want {
			t.Errorf("%s: CheckCSRF = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func flip(tok string) string {
	b := []byte(tok)
	if b[len(b)/2] == 'A' {
		b[len(b)/2] = 'B'
	} else {
		b[len(b)/2] = 'A'
	}
	return string(b)
}

func TestCleanup(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, _ := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	if _, _, err := w.store.NewSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, _ = w.store.Authenticate(ctx, "anna@bygg.se", "fel lösenord helt och hållet", "192.0.2.1")
	count := func(table string) int {
		var n int
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := w.store.Cleanup(ctx, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if count("sessions") != 1 || count("login_throttle") != 2 {
		t.Fatalf("Cleanup removed live rows: sessions %d throttle %d", count("sessions"), count("login_throttle"))
	}
	w.clock.Advance(31 * 24 * time.Hour)
	if err := w.store.Cleanup(ctx, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if count("sessions") != 0 || count("login_throttle") != 0 {
		t.Errorf("after Cleanup: sessions %d throttle %d, want 0 0", count("sessions"), count("login_throttle"))
	}
}
