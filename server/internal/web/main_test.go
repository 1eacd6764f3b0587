package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/internal/testclock"
	"github.com/liggare/liggare/internal/totp"
	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/live"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
	"github.com/liggare/liggare/syncproto"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var stockholm = func() *time.Location {
	l, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err)
	}
	return l
}()

// liveOptsForTest coalesce briefly, so that tests wait little.
var liveOptsForTest = live.Options{Coalesce: 10 * time.Millisecond}

// cheapParams keep password hashing fast in tests.
var cheapParams = account.Params{Memory: 64, Time: 1, Threads: 1}

const testPassword = "rödbetor i snöstorm"

// Names of people, one tenant each, that must never show across tenants.
const (
	nameAnna  = "Anna Byggsson"    // staff of bygg, on site A
	nameErik  = "Erik Elström"     // staff of el, a contractor on site A
	nameOlle  = "Olle Annatsson"   // staff of other, on its own site C
	nameSiteC = "Kvarteret Cedern" // other's site
)

// world is a database with three tenants:
//
//	bygg owns site A and site B; el is a contractor on site A; other is
//	unrelated and owns site C. Anna (bygg) and Erik (el) are checked in at
//	site A, Olle (other) at site C; an unknown card was tapped at A.
type world struct {
	pool                *pgxpool.Pool
	srv                 *Server
	clock               *testclock.Clock
	keys                *pii.Keys
	reconciler          *ledger.Reconciler
	ingest              *ingest.Store
	bygg, el, other     int64
	siteA, siteB, siteC int64
	anna, erik, olle    int64
	seq                 map[string]uint64
}

type worldOption func(*Config)

func newWorld(t testing.TB, opts ...worldOption) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{pool: pgtest.New(t), keys: pii.NewTestKeys(), seq: map[string]uint64{},
		clock: testclock.New(time.Date(2026, 3, 2, 7, 0, 0, 0, stockholm))} // a Monday
	cfg := Config{
		Pool: w.pool, Keys: w.keys, Now: w.clock.Now,
		Accounts: account.Options{Now: w.clock.Now, Params: cheapParams, GrantMaxUses: 100,
			RedeemLimit: account.Limit{Name: "redeem_ip", Free: 1000, Window: time.Hour, Delay: time.Minute, MaxDelay: time.Hour}},
		Live: liveOptsForTest,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	w.ingest = ingest.NewStore(w.pool, nil)
	w.reconciler = ledger.NewReconciler(w.pool, ledger.ReconcilerOptions{OnChange: srv.LedgerChanged})

	reg := registry.NewStore(w.pool, w.keys)
	org := func(name, number string) int64 {
		id, err := reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: name, OrgNumber: number})
		if err != nil {
			t.Fatalf("CreateOrganisation(%s) = %v", name, err)
		}
		return id
	}
	w.bygg = org("Bygg AB", "556036-0793")
	w.el = org("El AB", "556677-8899")
	w.other = org("Annat AB", "559000-0005")
	site := func(owner int64, ident, name string) int64 {
		id, err := reg.CreateSite(ctx, owner, registry.NewSite{Ident: ident, Name: name, Address: "Storgatan 1",
			ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"})
		if err != nil {
			t.Fatalf("CreateSite(%s) = %v", name, err)
		}
		return id
	}
	w.siteA = site(w.bygg, "AAAAAAAAAAAA1", "Kvarteret Asken")
	w.siteB = site(w.bygg, "BBBBBBBBBBBB2", "Kvarteret Björken")
	w.siteC = site(w.other, "CCCCCCCCCCCC3", nameSiteC)
	if err := reg.AddContractor(ctx, w.bygg, w.siteA, w.el, 0); err != nil {
		t.Fatal(err)
	}
	person := func(org int64, name, pnr, card string) int64 {
		id, err := reg.AddPerson(ctx, org, registry.NewPerson{Name: name, IDNumber: pnr})
		if err != nil {
			t.Fatalf("AddPerson(%s) = %v", name, err)
		}
		if _, err := reg.AddCard(ctx, org, registry.NewCard{CardNumber: card, PersonID: id}); err != nil {
			t.Fatalf("AddCard(%s) = %v", card, err)
		}
		return id
	}
	w.anna = person(w.bygg, nameAnna, personnummer(1980, 1, 1, 1), "AB0000000001")
	w.erik = person(w.el, nameErik, personnummer(1981, 2, 2, 2), "AB0000000002")
	w.olle = person(w.other, nameOlle, personnummer(1982, 3, 3, 3), "AB0000000003")
	for _, tm := range []struct {
		id   string
		org  int64
		site int64
	}{{"TA", w.bygg, w.siteA}, {"TB", w.bygg, w.siteB}, {"TC", w.other, w.siteC}} {
		if _, err := w.pool.Exec(ctx, `INSERT INTO terminals (terminal_id, last_seen_at) VALUES ($1, $2)`, tm.id, w.clock.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := reg.AssignTerminal(ctx, tm.org, tm.id, tm.site, "toggle", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "test"); err != nil {
			t.Fatal(err)
		}
	}
	at := w.clock.Now().Add(-30 * time.Minute)
	w.tap(t, "TA", "AB0000000001", at)
	w.tap(t, "TA", "AB0000000002", at.Add(time.Minute))
	w.tap(t, "TA", "FFFF00001111", at.Add(2*time.Minute)) // unknown
	w.tap(t, "TC", "AB0000000003", at)
	w.drain(t)
	return w
}

// tap stores a tap through ingest, as a terminal's upload would.
func (w *world) tap(t testing.TB, terminal, card string, at time.Time) {
	t.Helper()
	w.seq[terminal]++
	sess := &ingest.Session{TerminalID: terminal, StoreEpoch: 1,
		HelloClock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}, HelloReceived: time.Now()}
	tp := syncproto.Tap{Seq: w.seq[terminal], CardID: card,
		Clock: syncproto.Clock{WallMicros: at.UnixMicro(), BootID: "b", MonoNanos: int64(w.seq[terminal])}}
	if _, err := w.ingest.Apply(context.Background(), []*ingest.Submission{{Session: sess,
		Batch: &syncproto.Batch{BatchID: w.seq[terminal], Taps: []syncproto.Tap{tp}}, Received: time.Now()}}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) drain(t testing.TB) {
	t.Helper()
	if err := w.reconciler.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// personnummer makes a valid ten-digit personnummer (with its Luhn check
// digit) in the twelve-digit form.
func personnummer(y, m, d, n int) string {
	base := fmt.Sprintf("%02d%02d%02d%03d", y%100, m, d, n)
	sum := 0
	for i, c := range base {
		v := int(c - '0')
		if i%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return fmt.Sprintf("%d%s-%s%d", y/100, base[:6], base[6:], (10-sum%10)%10)
}

// user is a test user with a complete login: password, TOTP enabled.
type user struct {
	id    int64
	email string
}

// newUser creates a user with role in org (and, for a site manager, the
// site), with TOTP enabled.
func (w *world) newUser(t testing.TB, email string, org int64, role account.Role, sites ...int64) user {
	t.Helper()
	ctx := context.Background()
	st := w.srv.Accounts()
	sys := account.System("test")
	u, err := st.CreateUser(ctx, sys, email, "Namn "+strings.Split(email, "@")[0])
	if err != nil {
		t.Fatalf("CreateUser(%s) = %v", email, err)
	}
	if err := st.SetPassword(ctx, sys, u.ID, testPassword); err != nil {
		t.Fatal(err)
	}
	if role != "" {
		if err := st.GrantRole(ctx, sys, u.ID, org, role); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range sites {
		if err := st.AssignSite(ctx, sys, u.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	w.enableTOTP(t, u.ID)
	return user{id: u.ID, email: email}
}

// enableTOTP enrols a user's second factor; the secret is forgotten.
func (w *world) enableTOTP(t testing.TB, userID int64) string {
	t.Helper()
	ctx := context.Background()
	p := account.Principal{UserID: userID}
	e, err := w.srv.Accounts().BeginTOTP(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.Accounts().ConfirmTOTP(ctx, p, totpCode(t, e.Secret, w.clock.Now())); err != nil {
		t.Fatalf("ConfirmTOTP = %v", err)
	}
	return e.Secret
}

// totpCode computes the RFC 6238 code of a base32 secret at t.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// session opens a session for u and returns its cookie value.
func (w *world) session(t testing.TB, u user) string {
	t.Helper()
	tok, _, err := w.srv.Accounts().NewSession(context.Background(), u.id)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// csrf returns a CSRF token of the session named by tok.
func (w *world) csrf(t testing.TB, tok string) string {
	t.Helper()
	sess, err := w.srv.Accounts().Session(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return account.CSRFToken(sess)
}

// request is one request to the server.
type request struct {
	method, path string
	session      string // session cookie value
	form         url.Values
	body         io.Reader // overrides form
	contentType  string
	header       http.Header
}

// do serves a request in-process and returns the response.
func (w *world) do(t testing.TB, rq request) *http.Response {
	t.Helper()
	var body io.Reader
	if rq.body != nil {
		body = rq.body
	} else if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	r.RemoteAddr = "192.0.2.10:5555"
	if rq.form != nil && rq.body == nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if rq.contentType != "" {
		r.Header.Set("Content-Type", rq.contentType)
	}
	for k, vs := range rq.header {
		r.Header[k] = vs
	}
	if rq.session != "" {
		r.AddCookie(&http.Cookie{Name: account.CookieName, Value: rq.session})
	}
	// An event stream ends once its first bytes are flushed.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rec := httptest.NewRecorder()
	w.srv.Handler().ServeHTTP(cancelOnFlush{rec, cancel}, r.WithContext(ctx))
	return rec.Result()
}

// cancelOnFlush ends a request when its handler flushes.
type cancelOnFlush struct {
	*httptest.ResponseRecorder
	cancel func()
}

func (c cancelOnFlush) Flush() {
	c.ResponseRecorder.Flush()
	c.cancel()
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(n int64) string { return fmt.Sprint(n) }

// multipartCSV builds a multipart form with fields and a CSV file.
func multipartCSV(t testing.TB, fields map[string]string, csv string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "personal.csv")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(fw, csv)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}
