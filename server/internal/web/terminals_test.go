package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/syncserver"
	"github.com/liggare/liggare/syncproto"
)

// fleetServer is the terminals' side of the server on loopback: the sync
// endpoint (revoked credentials rechecked every 50 ms) and enrollment.
type fleetServer struct {
	syncURL, enrollURL string
}

func startFleet(t *testing.T, w *world) *fleetServer {
	t.Helper()
	committer := ingest.NewCommitter(w.ingest, ingest.CommitterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- committer.Run(ctx) }()
	terminals := auth.NewTerminals(w.pool)
	sync := syncserver.New(syncserver.Config{Terminals: terminals, Store: w.ingest, Committer: committer,
		CredentialRecheck: 50 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle(syncproto.SyncPath, sync)
	store := enroll.NewStore(w.pool, terminals)
	store.Now = w.clock.Now // the clock the pages made the codes by
	enroll.NewHandler(store, nil).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		sync.Shutdown(context.Background())
		cancel()
		<-done
	})
	return &fleetServer{syncURL: "ws" + strings.TrimPrefix(hs.URL, "http") + syncproto.SyncPath, enrollURL: hs.URL}
}

// connect opens a sync session as a terminal with epoch 1 and returns the
// connection and the server's Welcome; a refused upgrade returns its
// status.
func (f *fleetServer) connect(t *testing.T, cred, id string) (*websocket.Conn, *syncproto.Welcome, int) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(f.syncURL, http.Header{"Authorization": {"Bearer " + cred}})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, nil, resp.StatusCode
	}
	t.Cleanup(func() { ws.Close() })
	data, err := syncproto.Encode(&syncproto.Hello{ProtocolVersion: syncproto.ProtocolVersion, TerminalID: id, StoreEpoch: 1,
		AgentVersion: "test", Clock: syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "b", MonoNanos: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
		t.Fatal(err)
	}
	_, data, err = ws.ReadMessage()
	if err != nil {
		t.Fatalf("read Welcome: %v", err)
	}
	m, err := syncproto.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	welcome, ok := m.(*syncproto.Welcome)
	if !ok {
		t.Fatalf("got %s, want a Welcome", m.MsgType())
	}
	return ws, welcome, http.StatusSwitchingProtocols
}

// enroll redeems a code as `liggare-terminal enroll` does: a new key, a
// signed request over HTTP.
func (f *fleetServer) enroll(t *testing.T, code string) (enroll.EnrollResponse, int) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := enroll.NormalizeCode(code)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(enroll.EnrollRequest{Code: code, PublicKey: pub, AgentVersion: "test",
		Signature: ed25519.Sign(key, enroll.EnrollMessage(norm, "", pub))})
	resp, err := http.Post(f.enrollURL+enroll.EnrollPath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out enroll.EnrollResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
	}
	return out, resp.StatusCode
}

var (
	codeRe    = regexp.MustCompile(`id="enroll-code">([A-Z0-9-]+)<`)
	commandRe = regexp.MustCompile(`id="enroll-command">([^<]+)<`)
)

// issuedCode reads the code and command a page shows once.
func issuedFrom(t *testing.T, body string) (code, command string) {
	t.Helper()
	m, c := codeRe.FindStringSubmatch(body), commandRe.FindStringSubmatch(body)
	if m == nil || c == nil {
		t.Fatalf("no code and command in the page:\n%.3000s", body)
	}
	return m[1], c[1]
}

// TestTerminalsLifecycle runs a site's terminals from the web UI against
// the real sync and enrollment endpoints: a code lets a new kiosk in, a
// cancelled one is refused, a revoke cuts a live session and refuses the
// next, and a re-enrollment code brings the terminal back under its own
// id with its outbox's sequence carrying on.
func TestTerminalsLifecycle(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	fleet := startFleet(t, w)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	tok := w.session(t, mgr)
	csrf := w.csrf(t, tok)
	base := "/sites/" + itoa(w.siteA)
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		if form == nil {
			form = url.Values{}
		}
		form.Set(account.CSRFField, csrf)
		return w.do(t, request{method: "POST", path: base + path, session: tok, form: form})
	}
	page := func() string {
		t.Helper()
		return readBody(t, w.do(t, request{method: "GET", path: base + "/terminals", session: tok}))
	}
	// TA has had a credential from the CLI.
	oldCred, err := auth.NewTerminals(w.pool).Create(ctx, "TA")
	if err != nil {
		t.Fatal(err)
	}
	if body := page(); !strings.Contains(body, "från kommandoraden") || !strings.Contains(body, "utan egen nyckel") {
		t.Errorf("terminals page lacks TA's CLI credential:\n%.3000s", body)
	}

	// A new kiosk: the code is shown once with the command to run, listed
	// (without the code) until used, and lets the kiosk in.
	resp := post("/enrollment-codes", url.Values{"terminal": {"gate-9"}, "direction": {"in"}, "hours": {"24"}})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create code = %d:\n%.2000s", resp.StatusCode, body)
	}
	code, command := issuedFrom(t, body)
	if want := "liggare-terminal enroll --server ws://example.com/v1/sync --code " + code; command != want {
		t.Errorf("command %q, want %q", command, want)
	}
	if listed := page(); !strings.Contains(listed, "gate-9") || strings.Contains(listed, code) {
		t.Errorf("outstanding codes: want gate-9 listed and the code itself not shown:\n%.3000s", listed)
	}
	en, status := fleet.enroll(t, code)
	if status != http.StatusOK || en.TerminalID != "gate-9" || en.SiteIdent != "AAAAAAAAAAAA1" || en.Direction != "in" {
		t.Fatalf("enroll with the code = %d %+v", status, en)
	}
	if _, _, status := fleet.connect(t, en.Credential, "gate-9"); status != http.StatusSwitchingProtocols {
		t.Errorf("enrolled kiosk's connection = %d", status)
	}
	if body := page(); !strings.Contains(body, "med registreringskod") || strings.Contains(body, "enrollment-codes/") {
		t.Errorf("after enrollment gate-9 should be listed with its credential and no code outstanding:\n%.3000s", body)
	}

	// A cancelled code is refused at the kiosk.
	code, _ = issuedFrom(t, readBody(t, post("/enrollment-codes", url.Values{"hours": {"8"}})))
	codes, err := w.srv.enroll.OutstandingCodes(ctx, w.siteA, w.clock.Now())
	if err != nil || len(codes) != 1 {
		t.Fatalf("outstanding codes %+v, %v", codes, err)
	}
	w.clock.Advance(time.Minute)
	if resp := post("/enrollment-codes/"+itoa(codes[0].ID)+"/cancel", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel = %d", resp.StatusCode)
	}
	if _, status := fleet.enroll(t, code); status != http.StatusGone {
		t.Errorf("enroll with a cancelled code = %d, want 410", status)
	}

	// Revoking TA ends its live session and refuses the next.
	ws, welcome, _ := fleet.connect(t, oldCred, "TA")
	if welcome.AckedThrough != 3 {
		t.Fatalf("TA's Welcome acks %d, want its 3 taps", welcome.AckedThrough)
	}
	resp = post("/terminals/TA/revoke", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "revoked=TA") {
		t.Fatalf("revoke = %d %q", resp.StatusCode, loc)
	}
	for { // the server closes the session at its next credential check
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	if _, _, status := fleet.connect(t, oldCred, "TA"); status != http.StatusUnauthorized {
		t.Errorf("revoked TA's new connection = %d, want 401", status)
	}
	if body := page(); !strings.Contains(body, "Spärrad") {
		t.Errorf("terminals page does not show TA revoked:\n%.3000s", body)
	}

	// Re-enrollment: a code bound to TA brings it back as TA; the server
	// still holds its outbox's taps, so the kiosk's upload carries on.
	resp = post("/terminals/TA/rotate", nil)
	body = readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate = %d:\n%.2000s", resp.StatusCode, body)
	}
	code, _ = issuedFrom(t, body)
	en, status = fleet.enroll(t, code)
	if status != http.StatusOK || en.TerminalID != "TA" || !en.Reenrolled || en.Direction != "toggle" {
		t.Fatalf("re-enroll = %d %+v", status, en)
	}
	if _, welcome, status := fleet.connect(t, en.Credential, "TA"); status != http.StatusSwitchingProtocols || welcome.AckedThrough != 3 {
		t.Errorf("re-enrolled TA: status %d, Welcome %+v; want its 3 taps acked", status, welcome)
	}
	ts, err := w.srv.siteTerminals(ctx, w.siteA, w.clock.Now())
	if err != nil || len(ts) != 2 {
		t.Errorf("site A's terminals after re-enrollment: %+v, %v", ts, err)
	}

	// Another tenant's terminal is no business of this site.
	if resp := post("/terminals/TC/revoke", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke another site's terminal = %d, want 404", resp.StatusCode)
	}
	// Nor is a terminal of a site of the same owner that the manager does
	// not manage; its org admin may move it.
	resp = post("/enrollment-codes", url.Values{"terminal": {"TB"}, "hours": {"24"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "inte ansvarar för") {
		t.Errorf("code for site B's terminal by site A's manager = %d:\n%.2000s", resp.StatusCode, body)
	}
	adm := w.session(t, w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin))
	if resp := w.do(t, request{method: "POST", path: base + "/enrollment-codes", session: adm,
		form: url.Values{"terminal": {"TB"}, "hours": {"24"}, account.CSRFField: {w.csrf(t, adm)}}}); resp.StatusCode != http.StatusOK {
		t.Errorf("code for site B's terminal by the org admin = %d", resp.StatusCode)
	}
	resp = post("/enrollment-codes", url.Values{"terminal": {"TC"}, "hours": {"24"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "inte ansvarar för") {
		t.Errorf("code for another tenant's terminal id = %d:\n%.2000s", resp.StatusCode, body)
	}

	// Every action is on record, by the manager.
	es, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{Actor: "user:" + itoa(mgr.id)})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range es {
		count[e.Action]++
	}
	for action, n := range map[string]int{enroll.ActionCodeCreate: 3, enroll.ActionCodeCancel: 1, enroll.ActionRevoke: 1} {
		if count[action] != n {
			t.Errorf("%d %s entries by the manager, want %d (all: %v)", count[action], action, n, count)
		}
	}
	if _, _, err := auth.NewTerminals(w.pool).Authenticate(ctx, oldCred); !errors.Is(err, auth.ErrUnauthorized) {
		t.Errorf("old credential after re-enrollment: %v", err)
	}
}
