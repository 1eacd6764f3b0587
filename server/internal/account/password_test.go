package account

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerifyDefaultParams(t *testing.T) {
	h, err := hashPassword("korrekt häst batteri", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hashPassword = %q, want a PHC argon2id string with the default parameters", h)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"korrekt häst batteri", true},
		// The same text, "ä" decomposed (a + combining diaeresis): NFKC
		// makes it the same password.
		{"korrekt ha\u0308st batteri", true},
		{"korrekt häst batteri ", false},
		{"Korrekt häst batteri", false},
		{"", false},
	} {
		ok, p, err := verifyPassword(tc.pw, h)
		if err != nil || ok != tc.want || p != DefaultParams {
			t.Errorf("verifyPassword(%q) = %v, %+v, %v; want %v, %+v, nil", tc.pw, ok, p, err, tc.want, DefaultParams)
		}
	}
	// Two hashes of one password differ (random salt).
	h2, _ := hashPassword("korrekt häst batteri", DefaultParams)
	if h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, _ := hashPassword("x", cheapParams)
	parts := strings.Split(good, "$")
	for _, bad := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=4194304,t=1,p=1$" + parts[4] + "$" + parts[5], // 4 GiB: refused, not run
		"$argon2id$v=19$m=64,t=99,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$AAAA",
	} {
		if ok, _, err := verifyPassword("x", bad); ok || !errors.Is(err, errBadHash) {
			t.Errorf("verifyPassword(%q) = %v, %v; want false, errBadHash", bad, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw, email string
		ok        bool
	}{
		{"rödbetor i snöstorm", "anna@bygg.se", true},
		{"Tr4ktor-Kaffe-Moln", "anna@bygg.se", true},
		{"short", "anna@bygg.se", false},
		{"elva tecken", "anna@bygg.se", false}, // 11
		{"tolv tecken!", "anna@bygg.se", true}, // 12
		{"Password1234", "", false},
		{"password", "", false},
		{"PASSWORD123456!", "", false},
		{"Sommar2024!!", "", false},
		{"Lösenord12345", "", false},
		{"qwertyuiop1234", "", false},
		{"123456789012", "", false},
		{"aaaaaaaaaaaa", "", false},
		{"abababababab", "", false},
		{"abcdefghijklmn", "", false},
		{"987654321098", "", false},
		{"correct horse battery staple", "", false},
		{"Liggare!2026", "", false},
		{"annasvensson2026", "annasvensson@bygg.se", false},
		{"annasvensson-x-2026", "annasvensson@bygg.se", true},
		{strings.Repeat("ab9", 400), "", false}, // over MaxPasswordBytes
		{"\xff\xfe ogiltig utf-8 text", "", false},
	} {
		err := CheckPassword(tc.pw, tc.email)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrWeakPassword)) {
			t.Errorf("CheckPassword(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
	}
}

func TestSetPasswordRefusesWeak(t *testing.T) {
	w := newWorld(t)
	id, p := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.SetPassword(t.Context(), p, id, "Password1234"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("SetPassword(weak) = %v, want ErrWeakPassword", err)
	}
	// The old password still works.
	if _, err := w.store.Authenticate(t.Context(), "anna@bygg.se", testPassword, "192.0.2.1"); err != nil {
		t.Fatalf("Authenticate after refused change = %v", err)
	}
	// Someone else may not set it.
	_, po := w.user(t, "bo@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.SetPassword(t.Context(), po, id, "ett helt nytt lösenord"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("SetPassword(by another admin) = %v, want ErrForbidden", err)
	}
}

func TestRehashOnLogin(t *testing.T) {
	w := newWorld(t)
	id, _ := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	// Pretend the hash was made with older, weaker parameters.
	old, _ := hashPassword(testPassword, Params{Memory: 32, Time: 1, Threads: 1})
	if _, err := w.pool.Exec(t.Context(), `UPDATE users SET password_hash = $2 WHERE user_id = $1`, id, old); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Authenticate(t.Context(), "anna@bygg.se", testPassword, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	var h string
	if err := w.pool.QueryRow(t.Context(), `SELECT password_hash FROM users WHERE user_id = $1`, id).Scan(&h); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash after login = %q, want re-hashed with the store's parameters", h)
	}
}
