package inspect

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, stockholm)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDerive(t *testing.T) {
	modes := Modes{Default: ModeToggle, PerReader: map[string]Mode{"in": ModeIn, "out": ModeOut}}
	now := at("2026-11-20 12:00:00")
	type tp struct {
		card, reader, when string
	}
	for _, tc := range []struct {
		name    string
		taps    []tp
		present []string
		dirs    []Direction
	}{
		{"toggle: in", []tp{{"A", "", "2026-11-20 07:00:00"}}, []string{"A"}, []Direction{DirIn}},
		{"toggle: in, out", []tp{{"A", "", "2026-11-20 07:00:00"}, {"A", "", "2026-11-20 11:00:00"}}, nil,
			[]Direction{DirIn, DirOut}},
		{"toggle: parity of the day", []tp{{"A", "", "2026-11-20 07:00:00"}, {"A", "", "2026-11-20 09:00:00"},
			{"A", "", "2026-11-20 09:30:00"}}, []string{"A"}, []Direction{DirIn, DirOut, DirIn}},
		{"toggle: a repeat within 30 s counts for nothing", []tp{{"A", "", "2026-11-20 07:00:00"},
			{"A", "", "2026-11-20 07:00:20"}}, []string{"A"}, []Direction{DirIn, DirRepeat}},
		{"toggle: night shift across midnight", []tp{{"A", "", "2026-11-19 22:00:00"}, {"A", "", "2026-11-20 06:00:00"},
			{"A", "", "2026-11-20 07:00:00"}}, []string{"A"}, []Direction{DirIn, DirOut, DirIn}},
		{"toggle: open over 16 h lapses, the next tap checks in", []tp{{"A", "", "2026-11-19 07:00:00"},
			{"A", "", "2026-11-20 07:30:00"}}, []string{"A"}, []Direction{DirIn, DirIn}},
		{"toggle: open over 16 h is not present", []tp{{"A", "", "2026-11-19 19:00:00"}}, nil, []Direction{DirIn}},
		{"in and out readers", []tp{{"A", "in", "2026-11-20 07:00:00"}, {"A", "in", "2026-11-20 08:00:00"},
			{"B", "in", "2026-11-20 07:00:00"}, {"B", "out", "2026-11-20 07:00:10"}}, []string{"A"},
			[]Direction{DirIn, DirIn, DirIn, DirOut}},
		{"given out of order", []tp{{"A", "", "2026-11-20 11:00:00"}, {"A", "", "2026-11-20 07:00:00"}}, nil,
			[]Direction{DirOut, DirIn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var taps []Tap
			for i, x := range tc.taps {
				taps = append(taps, Tap{Epoch: 1, Seq: uint64(i + 1), CardID: x.card, Reader: x.reader, At: at(x.when)})
			}
			present, dirs := Derive(taps, modes, DefaultRules, now)
			var got []string
			for _, p := range present {
				got = append(got, p.CardID)
			}
			if diff := cmp.Diff(tc.present, got); diff != "" {
				t.Errorf("present (-want +got):\n%s", diff)
			}
			var gotDirs []Direction
			for i := range taps {
				gotDirs = append(gotDirs, dirs[TapKey{1, uint64(i + 1)}])
			}
			if diff := cmp.Diff(tc.dirs, gotDirs); diff != "" {
				t.Errorf("directions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseModes(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"", "toggle", false},
		{"in", "in", false},
		{"toggle,gate1=in,gate2=out", "toggle,gate1=in,gate2=out", false},
		{"gate1=in", "toggle,gate1=in", false},
		{"sideways", "", true},
		{"gate=up", "", true},
	} {
		m, err := ParseModes(tc.in)
		if (err != nil) != tc.err || (err == nil && m.String() != tc.want) {
			t.Errorf("ParseModes(%q) = %v, %v; want %q (error %v)", tc.in, m, err, tc.want, tc.err)
		}
	}
}

type wallClock struct{}

func (wallClock) Now() syncproto.Clock {
	return syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "boot", MonoNanos: 1}
}

// kiosk is a terminal with a real outbox, card cache and journal, whose
// agent feeds the journal.
type kiosk struct {
	agent   *agent.Agent
	journal *Journal
	cards   *cardcache.Cache
	ob      *outbox.Outbox
	dir     string
}

func newKiosk(t *testing.T) *kiosk {
	t.Helper()
	dir := t.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	cards, err := cardcache.Open(filepath.Join(dir, "cards.db"), cardcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cards.Close() })
	if err := cards.Apply(&syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: []syncproto.CardInfo{
		{CardID: "AA0000000001", Name: "Åsa Öberg", Employer: "Bygg AB", Status: syncproto.CardActive},
		{CardID: "BB0000000002", Name: "Bertil Ström", Employer: "El Öst AB", Status: syncproto.CardActive},
		{CardID: "CC0000000003", Name: "Cecilia Ek", Employer: "El Öst AB", Status: syncproto.CardBlockedID06},
		{CardID: "DD0000000004", Name: "David Lund", Employer: "Bygg AB", Status: syncproto.CardActive},
	}}); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(filepath.Join(dir, "journal.db"), JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	k := &kiosk{journal: j, cards: cards, ob: ob, dir: dir}
	k.agent = &agent.Agent{Outbox: ob, Cards: cards, Clock: wallClock{}, Logger: slog.New(slog.DiscardHandler),
		Observe: func(o agent.Observation) { j.Add(o) }}
	return k
}

func (k *kiosk) tap(t *testing.T, card string) tapsource.Feedback {
	t.Helper()
	return k.agent.Record(context.Background(), tapsource.Read{CardID: card})
}

func (k *kiosk) sources(online bool) *Sources {
	return &Sources{Journal: k.journal, Outbox: k.ob, Cards: k.cards.Lookup, TerminalID: "K1", Site: "Kvarteret Ängen",
		Link: func() uplink.State { return uplink.State{Connected: online, LastAck: at("2026-11-20 06:40:00")} }}
}

func TestReportFromCacheAndTaps(t *testing.T) {
	k := newKiosk(t)
	k.tap(t, "AA0000000001") // Åsa in
	k.tap(t, "BB0000000002") // Bertil in...
	// The server acknowledges everything so far: it leaves the outbox, the
	// journal keeps it.
	if _, err := k.ob.Ack(k.ob.Stats().LastSeq); err != nil {
		t.Fatal(err)
	}
	// A tap recorded before the journal existed (an older agent): only in
	// the outbox, still unsynced.
	if _, err := k.ob.Append(context.Background(), syncproto.Tap{CardID: "DD0000000004", Clock: wallClock{}.Now(), Answer: agent.AnswerAccepted}); err != nil {
		t.Fatal(err)
	}
	k.journal.Add(agent.Observation{}) // not recorded: ignored
	// Bertil out a minute later (his record is back-dated by hand, since
	// two taps within 30 s are one).
	k.journal.Add(agent.Observation{Read: tapsource.Read{CardID: "BB0000000002"}, At: time.Now().Add(time.Minute), Epoch: k.ob.Epoch(),
		Feedback: tapsource.Feedback{Recorded: true, Seq: 1000, Answer: agent.AnswerAccepted}})
	k.tap(t, "CC0000000003") // Cecilia, blocked: recorded, counted
	k.tap(t, "EE0000000005") // an unknown card

	rep, err := k.sources(false).Report()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Employer, Card string
		Unsynced             bool
		Note                 string
	}
	var got []row
	for _, p := range rep.Present {
		got = append(got, row{p.Name, p.Employer, p.CardID, p.Unsynced, p.Note})
	}
	want := []row{
		{"David Lund", "Bygg AB", "DD0000000004", true, ""},
		{"Åsa Öberg", "Bygg AB", "AA0000000001", false, ""}, // Å after Z, as in Swedish
		{"Cecilia Ek", "El Öst AB", "CC0000000003", true, "Kort spärrat hos ID06"},
		{"", "", "EE0000000005", true, "Okänt kort – registrerat"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("on site (-want +got):\n%s", diff)
	}
	if rep.Unsynced != 3 || len(rep.Taps) != 6 || rep.Online {
		t.Errorf("report: %d unsynced, %d taps, online %v; want 3, 6, false", rep.Unsynced, len(rep.Taps), rep.Online)
	}

	body, err := rep.CSV()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(body), "\r\n")
	if !strings.HasPrefix(lines[0], "\ufeffNamn;Arbetsgivare;Kort;Incheckad sedan;Ej synkad med servern;Anmärkning;Terminal;Framtagen") ||
		!strings.HasPrefix(lines[2], "Åsa Öberg;Bygg AB;AA0000000001;") || !strings.Contains(lines[3], ";ja;Kort spärrat hos ID06;K1;") ||
		!strings.HasPrefix(lines[4], "Okänt kort;;EE0000000005;") || len(lines) != 6 || lines[5] != "" {
		t.Errorf("CSV:\n%s", body)
	}
}

func TestJournalKeepsAckedTapsAcrossRestartAndPrunes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	j, err := OpenJournal(path, JournalOptions{MaxTaps: 4})
	if err != nil {
		t.Fatal(err)
	}
	add := func(seq uint64, ago time.Duration) Direction {
		return j.Add(agent.Observation{Read: tapsource.Read{CardID: "AA0000000001"}, At: time.Now().Add(-ago), Epoch: 7,
			Feedback: tapsource.Feedback{Recorded: true, Seq: seq, Answer: agent.AnswerAccepted, Name: "Åsa"}})
	}
	dirs := []Direction{add(1, 30*time.Hour), add(2, 3*time.Hour), add(3, 2*time.Hour), add(4, time.Hour), add(5, 0)}
	// 30 h ago is past the journal's day; then in, out, in, out.
	if diff := cmp.Diff([]Direction{DirNone, DirIn, DirOut, DirIn, DirOut}, dirs); diff != "" {
		t.Errorf("Add directions (-want +got):\n%s", diff)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	seqs := func(max int) []uint64 {
		j, err := OpenJournal(path, JournalOptions{MaxTaps: max})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		var out []uint64
		for _, tp := range j.Taps() {
			out = append(out, tp.Seq)
			if tp.Name != "Åsa" || tp.Epoch != 7 {
				t.Errorf("reloaded tap = %+v", tp)
			}
		}
		return out
	}
	if diff := cmp.Diff([]uint64{2, 3, 4, 5}, seqs(4)); diff != "" {
		t.Errorf("taps after restart, within a day (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{3, 4, 5}, seqs(3)); diff != "" {
		t.Errorf("taps after restart, at most 3 (-want +got):\n%s", diff)
	}
}

func TestGuardThrottlesWrongPINs(t *testing.T) {
	hash, err := HashPIN("4711")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(hash, "4711") {
		t.Fatalf("HashPIN = %q", hash)
	}
	var mu sync.Mutex
	now := at("2026-11-20 12:00:00")
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	g, err := NewGuard(hash, clock)
	if err != nil {
		t.Fatal(err)
	}
	for i := range FreeAttempts {
		if err := g.Check("0000"); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("wrong PIN %d: %v, want ErrWrongPIN", i+1, err)
		}
	}
	if err := g.Check("1234"); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("4th wrong PIN: %v", err)
	}
	// Now even the right PIN must wait.
	var th *ThrottledError
	if err := g.Check("4711"); !errors.As(err, &th) || th.RetryAfter != BaseDelay {
		t.Fatalf("right PIN too soon: %v, want a wait of %v", err, BaseDelay)
	}
	advance(BaseDelay)
	if err := g.Check("9999"); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("5th wrong PIN: %v", err)
	}
	if err := g.Check("4711"); !errors.As(err, &th) || th.RetryAfter != 2*BaseDelay {
		t.Fatalf("after 5 wrong: %v, want a wait of %v", err, 2*BaseDelay)
	}
	advance(2 * BaseDelay)
	if err := g.Check("4711"); err != nil {
		t.Fatalf("right PIN after the wait: %v", err)
	}
	if err := g.Check("0000"); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("a wrong PIN after a right one: %v, want ErrWrongPIN without waiting", err)
	}

	off, err := NewGuard("", nil)
	if err != nil || off.Enabled() || !errors.Is(off.Check("4711"), ErrNoPIN) {
		t.Errorf("a Guard without a hash: %v, enabled %v", err, off.Enabled())
	}
	if _, err := NewGuard("$argon2id$v=19$m=1,t=1,p=1$xx$yy", nil); !errors.Is(err, ErrBadPINHash) {
		t.Errorf("NewGuard(malformed) = %v, want ErrBadPINHash", err)
	}
	if _, err := HashPIN("12"); err == nil {
		t.Error("HashPIN(12) = nil error, want too short")
	}
}

func TestPagesBehindPIN(t *testing.T) {
	k := newKiosk(t)
	k.tap(t, "AA0000000001")
	hash, err := HashPIN("4711")
	if err != nil {
		t.Fatal(err)
	}
	guard, err := NewGuard(hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(k.dir, "inspect")
	srv := httptest.NewServer(NewHandler(k.sources(false), guard, HandlerOptions{OutDir: out}))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("/inspect/")
	if code != 200 || !strings.Contains(body, "Ange arbetsplatsens PIN-kod") || strings.Contains(body, "Åsa") {
		t.Fatalf("GET /inspect/ before the PIN = %d:\n%s", code, body)
	}
	if code, _ := get("/inspect/narvaro.csv"); code != 200 {
		// Redirected to the PIN form.
		t.Errorf("CSV before the PIN = %d", code)
	}
	if _, body := get("/inspect/narvaro.csv"); strings.Contains(body, "Åsa") {
		t.Errorf("CSV before the PIN leaks the list:\n%s", body)
	}
	if code, body := post("/inspect/login", url.Values{"pin": {"0000"}}); code != http.StatusUnauthorized || !strings.Contains(body, "Fel PIN-kod") {
		t.Errorf("wrong PIN = %d:\n%s", code, body)
	}
	code, body = post("/inspect/login", url.Values{"pin": {"4711"}})
	if code != 200 || !strings.Contains(body, "Närvarolista från terminalen") || !strings.Contains(body, "Åsa Öberg") ||
		!strings.Contains(body, "Personnummer finns inte på terminalen") || !strings.Contains(body, "Ingen anslutning till servern") {
		t.Fatalf("after the right PIN = %d:\n%s", code, body)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if csrf == nil {
		t.Fatal("no CSRF token in the page")
	}
	if code, body := get("/inspect/narvaro.csv"); code != 200 || !strings.HasPrefix(body, "\ufeffNamn;") || !strings.Contains(body, "Åsa Öberg;Bygg AB;AA0000000001;") {
		t.Errorf("CSV = %d:\n%s", code, body)
	}
	if code, body := get("/inspect/narvaro.html"); code != 200 || !strings.Contains(body, "Åsa Öberg") || strings.Contains(body, "Logga ut") {
		t.Errorf("printable HTML = %d (it must carry no toolbar):\n%s", code, body)
	}
	if code, _ := post("/inspect/save", url.Values{}); code != http.StatusForbidden {
		t.Errorf("save without the CSRF token = %d, want 403", code)
	}
	code, body = post("/inspect/save", url.Values{"csrf": {csrf[1]}})
	if code != 200 || !strings.Contains(body, "Sparat") {
		t.Fatalf("save = %d:\n%s", code, body)
	}
	files, _ := filepath.Glob(filepath.Join(out, "narvaro-K1-*"))
	if len(files) != 2 {
		t.Fatalf("saved files = %v, want a CSV and an HTML", files)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "Åsa Öberg") {
			t.Errorf("%s lacks the list", f)
		}
	}

	// Requests from elsewhere are refused.
	req, _ := http.NewRequest("POST", srv.URL+"/inspect/login", strings.NewReader("pin=4711"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login = %v, %v; want 403", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/inspect/", nil)
	req.Host = "attacker.example:80"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host = %v, %v; want 421", resp.StatusCode, err)
	}

	if code, _ := post("/inspect/logout", url.Values{"csrf": {csrf[1]}}); code != 200 {
		t.Errorf("logout = %d", code)
	}
	if _, body := get("/inspect/"); !strings.Contains(body, "Ange arbetsplatsens PIN-kod") {
		t.Errorf("after logout the list is still shown")
	}

	// Throttled at the page: four more wrong PINs, then 429.
	for range FreeAttempts + 1 {
		post("/inspect/login", url.Values{"pin": {"0000"}})
	}
	resp, err := c.PostForm(srv.URL+"/inspect/login", url.Values{"pin": {"4711"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after too many wrong PINs = %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestPagesWithoutPIN(t *testing.T) {
	k := newKiosk(t)
	guard, _ := NewGuard("", nil)
	srv := httptest.NewServer(NewHandler(k.sources(true), guard, HandlerOptions{}))
	defer srv.Close()
	resp, err := srv.Client().PostForm(srv.URL+"/inspect/login", url.Values{"pin": {"4711"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "inte aktiverat") {
		t.Errorf("login without a configured PIN = %d:\n%s", resp.StatusCode, b)
	}
}
