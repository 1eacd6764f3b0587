package enroll

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// Sites of the fixture.
const (
	siteA = "1A2B3C4D5E6F7" // of organisation A
	siteB = "7F6E5D4C3B2A1" // of organisation B
)

type fixture struct {
	pool      *pgxpool.Pool
	store     *Store
	terminals *auth.Terminals
	orgA      int64
	siteA     int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t)
	f := &fixture{pool: pool, terminals: auth.NewTerminals(pool)}
	f.store = NewStore(pool, f.terminals)
	ctx := t.Context()
	var orgB int64
	for _, q := range []struct {
		dst  *int64
		sql  string
		args []any
	}{
		{&f.orgA, `INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id`, nil},
		{&orgB, `INSERT INTO organisations (name, org_number) VALUES ('El AB', '556000-0002') RETURNING org_id`, nil},
		{&f.siteA, `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
			VALUES ($1, $2, 'Kv. Bryggan', 'Gatan 1', 'Bygg AB', '556000-0001') RETURNING site_id`, []any{&f.orgA, siteA}},
		{new(int64), `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
			VALUES ($1, $2, 'Kv. Elen', 'Gatan 2', 'El AB', '556000-0002') RETURNING site_id`, []any{&orgB, siteB}},
	} {
		args := make([]any, len(q.args))
		for i, a := range q.args {
			if p, ok := a.(*int64); ok {
				a = *p
			}
			args[i] = a
		}
		if err := pool.QueryRow(ctx, q.sql, args...).Scan(q.dst); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) code(t *testing.T, r CodeRequest) Code {
	t.Helper()
	if r.SiteIdent == "" {
		r.SiteIdent = siteA
	}
	if r.CreatedBy == "" {
		r.CreatedBy = "cli:test"
	}
	c, err := f.store.CreateCode(t.Context(), r)
	if err != nil {
		t.Fatalf("CreateCode(%+v): %v", r, err)
	}
	return c
}

// request returns a signed EnrollRequest for code, with a new key.
func request(t testing.TB, code, terminalID string) (EnrollRequest, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := NormalizeCode(code)
	if err != nil {
		t.Fatal(err)
	}
	return EnrollRequest{Code: code, TerminalID: terminalID, PublicKey: pub,
		Signature: ed25519.Sign(key, EnrollMessage(norm, terminalID, pub))}, key
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := f.pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnroll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.code(t, CodeRequest{Direction: "in"})
	if len(c.Code) != CodeLength || strings.Trim(c.Code, Alphabet) != "" {
		t.Fatalf("code %q: want %d characters of %s", c.Code, CodeLength, Alphabet)
	}
	// Typed the way people type: lower case, with the dash.
	req, _ := request(t, strings.ToLower(FormatCode(c.Code)), "gate-1")
	resp, err := f.store.Redeem(ctx, req)
	if err != nil {
		t.Fatalf("Redeem: %v", err)
	}
	if resp.TerminalID != "gate-1" || resp.SiteIdent != siteA || resp.Direction != "in" || resp.Reenrolled ||
		!strings.HasPrefix(resp.Credential, "gate-1.") {
		t.Fatalf("Redeem = %+v", resp)
	}
	if id, _, err := f.terminals.Authenticate(ctx, resp.Credential); err != nil || id != "gate-1" {
		t.Fatalf("Authenticate(new credential) = %q, %v", id, err)
	}
	if n := f.count(t, `SELECT count(*) FROM terminal_assignments WHERE terminal_id = 'gate-1' AND site_id = $1 AND direction = 'in'`, f.siteA); n != 1 {
		t.Errorf("assignments to the code's site = %d, want 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM enrollment_codes WHERE code_id = $1 AND used_by = 'gate-1' AND used_at IS NOT NULL`, c.ID); n != 1 {
		t.Errorf("code not marked used")
	}
	if n := f.count(t, `SELECT count(*) FROM terminal_keys WHERE terminal_id = 'gate-1' AND public_key = $1 AND revoked_at IS NULL`, []byte(req.PublicKey)); n != 1 {
		t.Errorf("terminal key not stored")
	}
	// The code is stored hashed only.
	if n := f.count(t, `SELECT count(*) FROM enrollment_codes WHERE position($1 in encode(code_sha256, 'escape')) > 0`, c.Code); n != 0 {
		t.Errorf("code stored in clear")
	}
	entries, err := audit.List(ctx, f.pool, f.orgA, audit.Filter{SiteID: f.siteA})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		if e.Action == ActionEnroll && (e.Detail["terminal_id"] != "gate-1" || e.Actor != "terminal:gate-1") {
			t.Errorf("audit entry %+v", e)
		}
	}
	if got := strings.Join(actions, ","); got != ActionEnroll+","+ActionCodeCreate {
		t.Errorf("audit actions = %s, want %s,%s", got, ActionEnroll, ActionCodeCreate)
	}

	// Single use.
	again, _ := request(t, c.Code, "gate-2")
	if _, err := f.store.Redeem(ctx, again); !errors.Is(err, ErrCodeUsed) {
		t.Errorf("Redeem(used code) = %v, want ErrCodeUsed", err)
	}
}

func TestRedeemConcurrentlyOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.code(t, CodeRequest{})
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		req, _ := request(t, c.Code, fmt.Sprintf("k%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f.store.Redeem(context.Background(), req)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrCodeUsed):
			t.Errorf("Redeem #%d: %v, want success or ErrCodeUsed", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent redemptions succeeded, want 1", ok, n)
	}
	if got := f.count(t, `SELECT count(*) FROM terminal_credentials WHERE revoked_at IS NULL`); got != 1 {
		t.Errorf("%d active credentials, want 1", got)
	}
	if got := f.count(t, `SELECT count(*) FROM terminal_assignments`); got != 1 {
		t.Errorf("%d assignments, want 1", got)
	}
}

func TestRedeemExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	t0 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	now := t0
	f.store.Now = func() time.Time { return now }
	early := f.code(t, CodeRequest{TTL: time.Hour})
	late := f.code(t, CodeRequest{TTL: time.Hour})
	if !early.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ExpiresAt = %v, want %v", early.ExpiresAt, t0.Add(time.Hour))
	}
	now = t0.Add(time.Hour - time.Second)
	req, _ := request(t, early.Code, "")
	resp, err := f.store.Redeem(t.Context(), req)
	if err != nil {
		t.Fatalf("Redeem a second before expiry: %v", err)
	}
	if !strings.HasPrefix(resp.TerminalID, "T-") {
		t.Errorf("server-named terminal id %q", resp.TerminalID)
	}
	now = t0.Add(time.Hour)
	req, _ = request(t, late.Code, "")
	if _, err := f.store.Redeem(t.Context(), req); !errors.Is(err, ErrCodeExpired) {
		t.Errorf("Redeem at expiry = %v, want ErrCodeExpired", err)
	}
	// The default lifetime is a day.
	if c := f.code(t, CodeRequest{}); !c.ExpiresAt.Equal(now.Add(24 * time.Hour)) {
		t.Errorf("default ExpiresAt = %v, want %v", c.ExpiresAt, now.Add(24*time.Hour))
	}
}

func TestRedeemRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	// A terminal of organisation B's site.
	cB := f.code(t, CodeRequest{SiteIdent: siteB, TerminalID: "b-gate"})
	reqB, _ := request(t, cB.Code, "")
	if _, err := f.store.Redeem(ctx, reqB); err != nil {
		t.Fatal(err)
	}

	bound := f.code(t, CodeRequest{TerminalID: "gate-7"})
	free := f.code(t, CodeRequest{})
	badSig, _ := request(t, free.Code, "x")
	badSig.Signature[0] ^= 1
	otherKey, _ := request(t, free.Code, "x")
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	norm, _ := NormalizeCode(free.Code)
	otherKey.Signature = ed25519.Sign(stranger, EnrollMessage(norm, "x", otherKey.PublicKey))
	mismatch, _ := request(t, bound.Code, "gate-8")
	taken, _ := request(t, free.Code, "b-gate")
	unknown, _ := request(t, "22222-22222", "")
	for _, tc := range []struct {
		name string
		req  EnrollRequest
		want error
	}{
		{"bad signature", badSig, ErrSignature},
		{"signed by another key", otherKey, ErrSignature},
		{"unknown code", unknown, ErrCodeInvalid},
		{"malformed code", EnrollRequest{Code: "0OI1"}, ErrCodeInvalid},
		{"terminal id not the code's", mismatch, ErrTerminalID},
		{"terminal of another organisation", taken, ErrTerminalTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.store.Redeem(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("Redeem = %v, want %v", err, tc.want)
			}
		})
	}
	// None of the refusals used the codes up.
	if n := f.count(t, `SELECT count(*) FROM enrollment_codes WHERE used_at IS NULL`); n != 2 {
		t.Errorf("%d unused codes, want 2", n)
	}
	// A code for another organisation's terminal is refused at creation.
	if _, err := f.store.CreateCode(ctx, CodeRequest{SiteIdent: siteA, TerminalID: "b-gate", CreatedBy: "cli:test"}); !errors.Is(err, ErrTerminalTaken) {
		t.Errorf("CreateCode(other organisation's terminal) = %v, want ErrTerminalTaken", err)
	}
	for _, r := range []CodeRequest{
		{SiteIdent: "nope", CreatedBy: "x"},
		{SiteIdent: siteA, Direction: "sideways", CreatedBy: "x"},
		{SiteIdent: siteA, TTL: time.Second, CreatedBy: "x"},
		{SiteIdent: siteA},
	} {
		if _, err := f.store.CreateCode(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateCode(%+v) = %v, want ErrInvalid", r, err)
		}
	}
	if _, err := f.store.CreateCode(ctx, CodeRequest{SiteIdent: "AAAAAAAAAAAAA", CreatedBy: "x"}); !errors.Is(err, ErrSiteNotFound) {
		t.Errorf("CreateCode(unknown site) = %v, want ErrSiteNotFound", err)
	}
	if _, err := f.store.CreateCode(ctx, CodeRequest{SiteIdent: siteB, OrgID: f.orgA, CreatedBy: "x"}); !errors.Is(err, ErrSiteNotFound) {
		t.Errorf("CreateCode(another organisation's site) = %v, want ErrSiteNotFound", err)
	}
}

func rotateRequest(t *testing.T, key ed25519.PrivateKey, msg func(string, string, []byte) []byte, cred string) RotateRequest {
	t.Helper()
	nonce := make([]byte, MinNonceBytes)
	rand.Read(nonce)
	id, _, _ := strings.Cut(cred, ".")
	return RotateRequest{Nonce: nonce, Signature: ed25519.Sign(key, msg(id, cred, nonce))}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.code(t, CodeRequest{TerminalID: "gate-1"})
	req, key := request(t, c.Code, "")
	resp, err := f.store.Redeem(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	old := resp.Credential
	_, oldID, err := f.terminals.Authenticate(ctx, old)
	if err != nil {
		t.Fatal(err)
	}

	// The signature must be the terminal key's, over this credential.
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := f.store.Rotate(ctx, old, rotateRequest(t, stranger, RotateMessage, old)); !errors.Is(err, ErrSignature) {
		t.Errorf("Rotate(foreign key) = %v, want ErrSignature", err)
	}
	if _, err := f.store.Rotate(ctx, old, rotateRequest(t, key, ConfirmMessage, old)); !errors.Is(err, ErrSignature) {
		t.Errorf("Rotate(confirm signature) = %v, want ErrSignature", err)
	}
	if _, err := f.store.Rotate(ctx, "gate-1.forged", rotateRequest(t, key, RotateMessage, "gate-1.forged")); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Rotate(unknown credential) = %v, want ErrUnauthorized", err)
	}

	rot, err := f.store.Rotate(ctx, old, rotateRequest(t, key, RotateMessage, old))
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	// Until the new credential is used, the old one stays valid.
	if active, err := f.terminals.Active(ctx, oldID); err != nil || !active {
		t.Fatalf("old credential active = %v, %v before confirmation", active, err)
	}
	if _, err := f.store.Confirm(ctx, rot.Credential, rotateRequest(t, stranger, ConfirmMessage, rot.Credential)); !errors.Is(err, ErrSignature) {
		t.Errorf("Confirm(foreign key) = %v, want ErrSignature", err)
	}
	if _, err := f.store.Confirm(ctx, rot.Credential, rotateRequest(t, key, ConfirmMessage, rot.Credential)); err != nil {
		t.Fatalf("Confirm: %v", err)
	}
	if _, _, err := f.terminals.Authenticate(ctx, old); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Authenticate(old) after confirmation = %v, want ErrUnauthorized", err)
	}
	if id, _, err := f.terminals.Authenticate(ctx, rot.Credential); err != nil || id != "gate-1" {
		t.Errorf("Authenticate(new) = %q, %v", id, err)
	}

	// A rotation that is never confirmed explicitly is confirmed by the
	// first use of the new credential (the sync connection).
	rot2, err := f.store.Rotate(ctx, rot.Credential, rotateRequest(t, key, RotateMessage, rot.Credential))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.terminals.Authenticate(ctx, rot2.Credential); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.terminals.Authenticate(ctx, rot.Credential); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Authenticate(replaced) after first use of the new one = %v, want ErrUnauthorized", err)
	}
	// A rotation whose answer was lost is revoked by the next rotation.
	lost, err := f.store.Rotate(ctx, rot2.Credential, rotateRequest(t, key, RotateMessage, rot2.Credential))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Rotate(ctx, rot2.Credential, rotateRequest(t, key, RotateMessage, rot2.Credential)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.terminals.Authenticate(ctx, lost.Credential); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("Authenticate(lost rotation) = %v, want ErrUnauthorized", err)
	}

	// A terminal registered without enrollment has no key to sign with.
	legacy, err := f.terminals.Create(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Rotate(ctx, legacy, rotateRequest(t, key, RotateMessage, legacy)); !errors.Is(err, ErrNoKey) {
		t.Errorf("Rotate(legacy terminal) = %v, want ErrNoKey", err)
	}
}

func TestRevokeAndReenroll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	c := f.code(t, CodeRequest{TerminalID: "gate-1", Direction: "in"})
	req, _ := request(t, c.Code, "")
	first, err := f.store.Redeem(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.store.Revoke(ctx, "gate-1", "cli:test")
	if err != nil || n != 1 {
		t.Fatalf("Revoke = %d, %v; want 1", n, err)
	}
	if _, _, err := f.terminals.Authenticate(ctx, first.Credential); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("Authenticate(revoked) = %v", err)
	}
	c2 := f.code(t, CodeRequest{TerminalID: "gate-1", Direction: "out"})
	req2, _ := request(t, c2.Code, "gate-1")
	second, err := f.store.Redeem(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reenrolled || second.Direction != "out" {
		t.Errorf("re-enrollment = %+v", second)
	}
	if _, _, err := f.terminals.Authenticate(ctx, second.Credential); err != nil {
		t.Errorf("Authenticate(re-enrolled) = %v", err)
	}
	if n := f.count(t, `SELECT count(*) FROM terminal_keys WHERE terminal_id = 'gate-1' AND revoked_at IS NULL`); n != 1 {
		t.Errorf("%d active keys, want 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE action = $1 AND detail->>'terminal_id' = 'gate-1'`, ActionRevoke); n != 1 {
		t.Errorf("%d revoke audit entries, want 1", n)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := NewHandler(f.store, nil)
	var results []string
	h.OnResult = func(path, result string) { results = append(results, path+" "+result) }
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path, cred string, body any) (int, []byte) {
		t.Helper()
		var b []byte
		if s, ok := body.(string); ok {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
		if cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out bytes.Buffer
		out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}
	c := f.code(t, CodeRequest{})
	req, key := request(t, c.Code, "gate-1")
	status, body := post(EnrollPath, "", req)
	var resp EnrollResponse
	if status != http.StatusOK || json.Unmarshal(body, &resp) != nil || resp.TerminalID != "gate-1" {
		t.Fatalf("enroll = %d %s", status, body)
	}
	for _, tc := range []struct {
		name, path, cred string
		body             any
		status           int
		code             string
	}{
		{"used code", EnrollPath, "", req, http.StatusConflict, ErrorCodeUsed},
		{"not JSON", EnrollPath, "", "{", http.StatusBadRequest, ErrorCodeMalformed},
		{"unknown field", EnrollPath, "", `{"code":"x","extra":1}`, http.StatusBadRequest, ErrorCodeMalformed},
		{"rotate without credential", RotatePath, "", rotateRequest(t, key, RotateMessage, resp.Credential), http.StatusUnauthorized, ErrorCodeUnauthorized},
		{"rotate with foreign signature", RotatePath, resp.Credential, rotateRequest(t, key, ConfirmMessage, resp.Credential), http.StatusForbidden, ErrorCodeSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.path, tc.cred, tc.body)
			var e ErrorResponse
			if status != tc.status || json.Unmarshal(body, &e) != nil || e.Code != tc.code || e.Error == "" {
				t.Errorf("POST %s = %d %s, want %d with code %s", tc.path, status, body, tc.status, tc.code)
			}
		})
	}
	status, body = post(RotatePath, resp.Credential, rotateRequest(t, key, RotateMessage, resp.Credential))
	var rot RotateResponse
	if status != http.StatusOK || json.Unmarshal(body, &rot) != nil || !strings.HasPrefix(rot.Credential, "gate-1.") {
		t.Fatalf("rotate = %d %s", status, body)
	}
	status, body = post(ConfirmPath, rot.Credential, rotateRequest(t, key, ConfirmMessage, rot.Credential))
	if status != http.StatusOK {
		t.Fatalf("confirm = %d %s", status, body)
	}
	if results[0] != EnrollPath+" ok" || results[len(results)-1] != ConfirmPath+" ok" {
		t.Errorf("results = %q", results)
	}
	// Codes never reach the logs or metrics labels: only fixed words do.
	for _, r := range results {
		if strings.Contains(r, c.Code) {
			t.Errorf("result %q holds the code", r)
		}
	}
}

func TestFailureBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := NewHandler(f.store, nil)
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var last int
	for range failureBurst + 1 {
		resp, err := http.Post(srv.URL+EnrollPath, "application/json", strings.NewReader(`{"code":"22222-22222"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("after %d failures: %d, want 429", failureBurst+1, last)
	}
}
