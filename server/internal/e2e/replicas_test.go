package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/internal/webclient"
	"github.com/liggare/liggare/server/internal/daemon"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/live"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
)

// TestReplicas runs three liggare-server replicas on one PostgreSQL
// database, as a load balancer would, and moves terminals between them
// while they tap: every confirmed tap is stored and reconciled into the
// ledger exactly once, whichever replicas took its batch and reconciled it,
// and a site page open on any replica hears of taps the others took in and
// reconciled.
//
// Every replica reconciles from one shared queue, so which one takes a tap
// into the ledger is not the test's to choose. To see a change cross from
// one replica to another, a second site has a terminal of its own (M) that
// taps only marker workers, one at a time; the test listens on the
// notification channel too, and each replica connects to PostgreSQL under
// its own application_name, so the sender of each of that site's
// notifications is known.
func TestReplicas(t *testing.T) {
	t.Parallel()
	const (
		numReplicas = 3
		numWorkers  = 12
		minTaps     = 150 // per terminal; taps go on while the moves last
		maxPause    = 40 * time.Millisecond
		adminEmail  = "admin@replik.test"
		orgNumber   = "556036-0793"
	)
	// T1-T4 tap without pause at the gate of the site; M, at the marker
	// site, taps only when the schedule says.
	ids := []string{"T1", "T2", "T3", "T4", "M"}
	modes := []string{"in", "out", "toggle", "toggle", "in"}
	batchSizes := []int{0, 32, 4, 1, 0} // 0 keeps the default
	const markerTerm = 4
	ctx := testContext(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("replicas seed %d (replay the schedule with -e2e.seed=%d)", seed, seed)

	// A database without a schema: the replicas' migrations race for it.
	empty := pgtest.NewEmpty(t)
	encKey, indexKey := pii.GenerateKeyB64(), pii.GenerateKeyB64()
	sys := &system{t: t, bin: binaries(t), dbURL: empty.Config().ConnString(), dir: t.TempDir(), pool: empty,
		env: []string{"LIGGARE_PII_KEYS=" + encKey, "LIGGARE_PII_INDEX_KEY=" + indexKey}}
	reps := make([]*replica, numReplicas)
	for i := range reps {
		name := fmt.Sprintf("replica-%d", i+1)
		reps[i] = &replica{server: sys.newNamedServer(name), name: name}
		reps[i].env = withApplicationName(t, reps[i].env, sys.dbURL, name)
	}
	var starts errgroup.Group
	for _, r := range reps {
		starts.Go(func() error { return r.start(ctx) })
	}
	if err := starts.Wait(); err != nil {
		t.Fatal(err)
	}
	pool := sys.db()
	checkMigrationRace(t, ctx, pool, reps)

	// The tenant, its sites, workers with cards, and the terminals at the
	// gates. Marker workers, each tapped once at the marker site, show
	// that a replica's page heard of a change.
	org, oneTime := sys.createOrg("Replik Bygg AB", orgNumber, adminEmail)
	keys, err := pii.LoadKeys(encKey, indexKey)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.NewStore(pool, keys)
	site, err := reg.CreateSite(ctx, org, registry.NewSite{Ident: "REPLIK0SITE01", Name: "Kvarteret Repliken",
		Address: "Storgatan 3, Uppsala", ByggherreName: "Replik Bygg AB", ByggherreOrgNumber: orgNumber})
	if err != nil {
		t.Fatal(err)
	}
	markerSite, err := reg.CreateSite(ctx, org, registry.NewSite{Ident: "REPLIK0SITE02", Name: "Signalbodan",
		Address: "Storgatan 5, Uppsala", ByggherreName: "Replik Bygg AB", ByggherreOrgNumber: orgNumber})
	if err != nil {
		t.Fatal(err)
	}
	holders := make(map[string]int64) // card number -> person
	addWorker := func(i int, name string) string {
		p, err := reg.AddPerson(ctx, org, registry.NewPerson{Name: name, IDNumber: fmt.Sprintf("RPL-%04d", i), Country: "PL"})
		if err != nil {
			t.Fatal(err)
		}
		card := fmt.Sprintf("RP%010d", i)
		if _, err := reg.AddCard(ctx, org, registry.NewCard{CardNumber: card, PersonID: p, ValidUntil: time.Now().AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
		holders[card] = p
		return card
	}
	var workerCards []string
	for i := range numWorkers {
		workerCards = append(workerCards, addWorker(i, fmt.Sprintf("Arbetare %02d", i+1)))
	}
	markers := make([]marker, numReplicas*markerTries)
	for i := range markers {
		markers[i].name = fmt.Sprintf("Signal %02d", i+1)
		markers[i].card = addWorker(100+i, markers[i].name)
	}
	creds := sys.addTerminals(ids...)
	siteOf := make(map[string]int64)
	for i, id := range ids {
		siteOf[id] = site
		if i == markerTerm {
			siteOf[id] = markerSite
		}
		if err := reg.AssignTerminal(ctx, org, id, siteOf[id], modes[i], time.Now().Add(-time.Minute), "e2e"); err != nil {
			t.Fatal(err)
		}
	}

	// A site manager signs in on one replica; the session holds on every
	// replica, and each one's page of the marker site follows the live
	// updates.
	web := webclient.New()
	if err := web.FirstSignIn(ctx, reps[0].url(), adminEmail, oneTime); err != nil {
		t.Fatal(err)
	}
	liveCtx, stopLive := context.WithCancel(ctx)
	var liveWG sync.WaitGroup
	t.Cleanup(func() { stopLive(); liveWG.Wait() })
	followers := make([]*webclient.Follower, numReplicas)
	for i, r := range reps {
		followers[i] = webclient.NewFollower(r.name, r.url, markerSite, web)
		liveWG.Go(func() { followers[i].Run(liveCtx) })
	}
	for _, f := range followers {
		if err := waitFor(ctx, startTimeout, f.Name()+"'s event stream to open", func() (bool, error) {
			return f.IsOpen(), f.Failure()
		}); err != nil {
			t.Fatal(err)
		}
	}

	notes := watchNotifications(t, liveCtx, &liveWG, sys.dbURL, pool, markerSite)
	fl := &fleet{t: t, rng: rand.New(rand.NewPCG(seed, 0)), reps: reps, followers: followers, notes: notes,
		markers: markers, marker: markerTerm, pool: pool}
	for i, id := range ids {
		var extra []string
		if batchSizes[i] > 0 {
			extra = []string{"--batch", fmt.Sprint(batchSizes[i])}
		}
		fl.at = append(fl.at, i%numReplicas)
		px := newProxy(t, reps[i%numReplicas].addr)
		tm := sys.newTerminal(id, creds[id], px.Addr(), extra...)
		if err := tm.start(); err != nil {
			t.Fatal(err)
		}
		d := newDriver(tm)
		d.pause = crowd(rand.New(rand.NewPCG(seed, uint64(i+1))), maxPause)
		q := &cardQueue{rng: rand.New(rand.NewPCG(seed, uint64(100+i))), cards: workerCards}
		d.card = q.next
		fl.proxies, fl.terms, fl.drivers, fl.queues = append(fl.proxies, px), append(fl.terms, tm), append(fl.drivers, d), append(fl.queues, q)
	}

	var movesDone atomic.Bool
	began := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer movesDone.Store(true)
		return fl.run(gctx)
	})
	for _, d := range fl.drivers[:markerTerm] {
		g.Go(func() error {
			return d.tapUntil(gctx, func() bool { return movesDone.Load() && d.madeCount() >= minTaps })
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("taps and moves done after %.1fs: %s", time.Since(began).Seconds(), fl.summary())

	want := make(map[string]uint64, len(ids))
	for _, d := range fl.drivers {
		want[d.term.id] = d.lastMadeSeq()
	}
	if err := sys.waitSynced(ctx, want); err != nil {
		t.Error(err) // and go on: the checks below say which taps are missing
	}
	stopAll(t, fl.terms...)

	// Exactly once, whichever replica took each batch.
	confirmed := map[int64]map[ledger.TapID]string{site: {}, markerSite: {}} // site -> tap -> card
	for _, d := range fl.drivers {
		st := d.term.inspect(t)
		checkMovedTerminal(t, ctx, pool, d, st)
		for seq, card := range d.bySeq {
			confirmed[siteOf[d.term.id]][ledger.TapID{Terminal: d.term.id, Epoch: st.StoreEpoch, Seq: int64(seq)}] = card
		}
	}
	checkNoOtherTaps(t, ctx, pool, ids...)
	checkNoDeadLettersOrConflicts(t, ctx, pool)
	checkVisitedEveryReplica(t, reps, ids)

	// The replicas' reconcilers share the queue: wait until it is empty,
	// then stop the replicas, each of which must exit cleanly.
	rec := ledger.NewReconciler(pool, ledger.ReconcilerOptions{})
	if err := waitFor(ctx, syncTimeout, "the reconcilers to empty their queue", func() (bool, error) {
		b, err := rec.Backlog(ctx)
		return b.Rows == 0, err
	}); err != nil {
		t.Error(err)
	}
	stopLive()
	liveWG.Wait()
	for i, f := range followers {
		if err := f.Failure(); err != nil {
			t.Error(err)
		}
		t.Logf("%s: %d change events on %d event streams", reps[i].name, f.Changes(), f.Opened())
	}
	for _, r := range reps {
		r.markDown()
		if err := r.stop(stopTimeout); err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want a clean exit", r.name, err)
		}
	}
	store := ledger.NewStore(pool, ledger.DefaultRules)
	checkLedger(t, ctx, store, org, site, holders, confirmed[site])
	checkLedger(t, ctx, store, org, markerSite, holders, confirmed[markerSite])
}

// markerTries bounds the markers tapped for one replica's page: a try
// proves nothing when the replica itself reconciled the marker's tap.
const markerTries = 4

// withApplicationName returns env with a DATABASE_URL that names the
// replica's connections application_name, as pg_stat_activity shows them.
func withApplicationName(t testing.TB, env []string, dbURL, name string) []string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "DATABASE_URL=") })
	return append(env, "DATABASE_URL="+u.String())
}

// watchNotifications listens on the ledger's notification channel, as
// every replica does, and sends on the returned channel the
// application_name of the sender of each notification that names site.
func watchNotifications(t testing.TB, ctx context.Context, wg *sync.WaitGroup, dbURL string, pool *pgxpool.Pool, site int64) <-chan string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{live.Channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	from := make(chan string, 64)
	wg.Go(func() {
		defer conn.Close(context.Background())
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return // ctx ended
			}
			if !slices.Contains(live.ParsePayload(n.Payload), site) {
				continue
			}
			var app string
			if err := pool.QueryRow(ctx, `SELECT application_name FROM pg_stat_activity WHERE pid = $1`, n.PID).Scan(&app); err != nil {
				app = fmt.Sprintf("backend %d (%v)", n.PID, err)
			}
			select {
			case from <- app:
			default:
			}
		}
	})
	return from
}

// replica is one liggare-server of several; url is safe to call from the
// goroutines that follow its pages.
type replica struct {
	*server
	name string

	mu   sync.Mutex
	base string // "http://addr" of the current run; "" while it is down
}

func (r *replica) start(ctx context.Context) error {
	if err := r.server.start(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = "http://" + r.addr
	return nil
}

func (r *replica) url() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

// markDown says the replica is going away, before it is stopped or killed.
func (r *replica) markDown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base = ""
}

var sessionOpenRe = regexp.MustCompile(`msg=sync_session_open terminal_id=(\S+)`)

// sessionsOpened counts the sync sessions terminal id opened on the
// replica, over all its runs.
func (r *replica) sessionsOpened(id string) int {
	b, _ := os.ReadFile(r.logPath)
	n := 0
	for _, m := range sessionOpenRe.FindAllStringSubmatch(string(b), -1) {
		if m[1] == id {
			n++
		}
	}
	return n
}

// createOrg creates an organisation and its first admin with
// liggare-server org create, and returns the organisation's id and the
// admin's one-time password.
func (s *system) createOrg(name, number, admin string) (int64, string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "liggare-server"), "org", "create", "--name", name, "--org-number", number, "--admin", admin)
	cmd.Env = s.serverEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("liggare-server org create: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`\(id (\d+)\)`).FindStringSubmatch(stderr.String())
	if m == nil {
		s.t.Fatalf("liggare-server org create did not say the organisation's id:\n%s", stderr.String())
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	return id, strings.TrimSpace(string(out))
}

// checkMigrationRace checks that the replicas, started together on an
// empty database, left it as one migration run would: one replica applied
// every migration, the others waited for its lock and found nothing to do,
// each version is recorded once, the schema is the one a single run makes,
// and every replica is ready.
func checkMigrationRace(t *testing.T, ctx context.Context, pool *pgxpool.Pool, reps []*replica) {
	t.Helper()
	reference := pgtest.New(t) // migrated once, by pgtest
	var want int
	if err := reference.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	var rows, versions, lo, hi int
	if err := pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT version), coalesce(min(version), 0), coalesce(max(version), 0)
		FROM schema_migrations`).Scan(&rows, &versions, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if rows != want || versions != want || lo != 1 || hi != want {
		t.Errorf("schema_migrations holds %d rows of %d versions %d..%d, want versions 1..%d once each", rows, versions, lo, hi, want)
	}
	appliedRe := regexp.MustCompile(`msg="applied migration"`)
	var migrators []string
	for _, r := range reps {
		n := len(appliedRe.FindAllString(r.runLog(), -1))
		if n == 0 {
			continue
		}
		migrators = append(migrators, r.name)
		if n != want {
			t.Errorf("%s applied %d migrations, want all %d or none", r.name, n, want)
		}
	}
	if len(migrators) != 1 {
		t.Errorf("migrations applied by %v, want by exactly one replica", migrators)
	}
	t.Logf("%d migrations applied by %v while the others waited", want, migrators)
	if diff := cmp.Diff(schemaOf(t, ctx, reference), schemaOf(t, ctx, pool)); diff != "" {
		t.Errorf("schema after the race differs from one migration run (-want +got):\n%s", diff)
	}
	for _, r := range reps {
		resp, err := http.Get(r.url() + "/readyz")
		if err != nil {
			t.Fatalf("%s /readyz: %v", r.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s /readyz: %s, want 200", r.name, resp.Status)
		}
	}
}

// schemaOf describes a database's schema: migrations, columns, indexes,
// constraints and triggers, one line each.
func schemaOf(t *testing.T, ctx context.Context, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(ctx, `
		SELECT 'migration ' || version || ' ' || name FROM schema_migrations
		UNION ALL
		SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
		FROM information_schema.columns WHERE table_schema = 'public'
		UNION ALL
		SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
		UNION ALL
		SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION ALL
		SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// marker is a worker tapped once, to follow one tap to a replica's page.
type marker struct {
	name, card string
}

// cardQueue chooses the cards a terminal's driver presents: random
// workers, or a card the test asked for next.
type cardQueue struct {
	rng   *rand.Rand // used by the driver's goroutine only
	cards []string

	mu      sync.Mutex
	pending []string
}

func (q *cardQueue) next() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) > 0 {
		c := q.pending[0]
		q.pending = q.pending[1:]
		return c
	}
	return q.cards[q.rng.IntN(len(q.cards))]
}

func (q *cardQueue) push(card string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, card)
}

// fleet is the terminals, each behind a proxy of its own, and the replicas
// the proxies point at. Its schedule moves terminals between replicas.
type fleet struct {
	t         testing.TB
	rng       *rand.Rand
	pool      *pgxpool.Pool
	reps      []*replica
	followers []*webclient.Follower
	notes     <-chan string // senders of the marker site's notifications
	markers   []marker      // not yet tapped
	marker    int           // the terminal at the marker site
	proxies   []*proxy
	terms     []*terminal
	drivers   []*driver
	queues    []*cardQueue
	at        []int // the replica each terminal's proxy points at
	began     time.Time

	moves, kills, restarts, signals int
}

// step is one thing the schedule does.
type step struct {
	kind      string // "move", "kill", "restart", "away"
	term, rep int
}

// plan returns the schedule: every terminal moved to every replica, each
// replica's page proving it hears of taps taken in elsewhere, one replica
// killed and one restarted gracefully, a few more moves, in random order.
func (f *fleet) plan() []step {
	var plan []step
	for i := range f.terms {
		for j := range f.reps {
			plan = append(plan, step{kind: "move", term: i, rep: j})
		}
	}
	for j := range f.reps {
		plan = append(plan, step{kind: "away", rep: j})
	}
	plan = append(plan, step{kind: "kill", rep: f.rng.IntN(len(f.reps))}, step{kind: "restart", rep: f.rng.IntN(len(f.reps))})
	for range 3 + f.rng.IntN(4) {
		plan = append(plan, step{kind: "move", term: f.rng.IntN(len(f.terms)), rep: f.rng.IntN(len(f.reps))})
	}
	f.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	return plan
}

func (f *fleet) run(ctx context.Context) error {
	f.began = time.Now()
	for n, s := range f.plan() {
		if err := sleep(ctx, f.between(50*time.Millisecond, 400*time.Millisecond)); err != nil {
			return err
		}
		var err error
		switch s.kind {
		case "move":
			err = f.move(ctx, s.term, s.rep)
		case "kill":
			err = f.kill(ctx, s.rep)
		case "restart":
			err = f.restart(ctx, s.rep)
		case "away":
			err = f.away(ctx, s.rep)
		}
		if err != nil {
			return fmt.Errorf("schedule step %d (%s): %w", n+1, s.kind, err)
		}
	}
	return nil
}

// move points terminal i's proxy at replica j, cuts its connection, and
// waits until the terminal has opened a session there.
func (f *fleet) move(ctx context.Context, i, j int) error {
	if f.at[i] == j {
		return nil
	}
	tm, r := f.terms[i], f.reps[j]
	before := r.sessionsOpened(tm.id)
	f.proxies[i].SetUpstream(r.addr)
	f.proxies[i].Cut()
	f.at[i] = j
	f.moves++
	f.logf("move %s to %s", tm.id, r.name)
	return waitFor(ctx, syncTimeout, fmt.Sprintf("terminal %s to open a session on %s", tm.id, r.name), func() (bool, error) {
		if err := tm.exitedOnItsOwn(); err != nil {
			return false, err
		}
		return r.sessionsOpened(tm.id) > before, r.exitedOnItsOwn()
	})
}

// elsewhere points every terminal on replica j at another replica: new
// connections go there. With cut, current connections are closed too.
func (f *fleet) elsewhere(j int, cut bool) {
	for i := range f.terms {
		if f.at[i] != j {
			continue
		}
		k := (j + 1 + f.rng.IntN(len(f.reps)-1)) % len(f.reps)
		f.proxies[i].SetUpstream(f.reps[k].addr)
		if cut {
			f.proxies[i].Cut()
		}
		f.at[i] = k
	}
}

// kill SIGKILLs replica j, sends its terminals to the others, and starts
// it again.
func (f *fleet) kill(ctx context.Context, j int) error {
	r := f.reps[j]
	f.logf("SIGKILL %s", r.name)
	r.markDown()
	r.kill()
	f.elsewhere(j, true)
	if err := sleep(ctx, f.between(0, 500*time.Millisecond)); err != nil {
		return err
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	f.kills++
	f.logf("%s back on %s", r.name, r.addr)
	return nil
}

// restart sends replica j's terminals elsewhere, stops it with SIGTERM (a
// deploy: it must finish the batches in flight and exit cleanly), and
// starts it again.
func (f *fleet) restart(ctx context.Context, j int) error {
	r := f.reps[j]
	f.logf("SIGTERM %s", r.name)
	f.elsewhere(j, false)
	r.markDown()
	if err := r.stop(stopTimeout); err != nil {
		return fmt.Errorf("%s after SIGTERM: %w, want a clean exit", r.name, err)
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	f.restarts++
	f.logf("%s back on %s", r.name, r.addr)
	return nil
}

// away proves that replica j's page hears of a change that the other
// replicas made: with no terminal connected to j, a marker worker taps in
// at the marker site's terminal, and once the notification of that change
// comes from another replica, j's page must get a change event and then
// show the marker on site. A marker that j reconciled itself proves
// nothing, and the next one is tapped; unless j leads the reconciler
// (daemon.Leader): then every change is j's own, there is no other
// replica's to hear of, and its page showing the marker is all there is
// to check.
func (f *fleet) away(ctx context.Context, j int) error {
	r, live, d := f.reps[j], f.followers[j], f.drivers[f.marker]
	f.logf("%s without terminals", r.name)
	f.elsewhere(j, true)
	if err := waitFor(ctx, syncTimeout, r.name+"'s event stream to be open", func() (bool, error) {
		return live.IsOpen(), live.Failure()
	}); err != nil {
		return err
	}
	opened := live.Opened()
	for range markerTries {
		m := f.markers[0]
		f.markers = f.markers[1:]
		for len(live.Signal()) > 0 || len(f.notes) > 0 { // earlier markers' changes
			select {
			case <-live.Signal():
			case <-f.notes:
			}
		}
		f.queues[f.marker].push(m.card)
		if err := d.tap(ctx); err != nil {
			return err
		}
		took := f.reps[f.at[f.marker]].name
		var from string
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case from = <-f.notes:
		case <-time.After(syncTimeout):
			return fmt.Errorf("no notification of %s's tap at %s", m.name, took)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-live.Signal():
		case <-time.After(syncTimeout):
			return fmt.Errorf("%s's page got no change event for %s, tapped at %s and notified by %s", r.name, m.name, took, from)
		}
		if live.Opened() != opened {
			return fmt.Errorf("%s's event stream was opened again while it waited for %s", r.name, m.name)
		}
		page, err := live.Fragment(ctx)
		if err != nil {
			return err
		}
		if !strings.Contains(page, m.name) {
			return fmt.Errorf("%s's page does not show %s after the change event", r.name, m.name)
		}
		if from != r.name {
			f.signals++
			f.logf("%s's page shows %s, taken in by %s, notified by %s", r.name, m.name, took, from)
			return nil
		}
		var leads bool
		if err := f.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			                 AND (l.classid::bigint << 32 | l.objid::bigint) = $1 AND a.application_name = $2)`,
			daemon.LeaderLockKey, r.name).Scan(&leads); err != nil {
			return err
		}
		if leads {
			f.logf("%s's page shows %s, taken in by %s; %s leads the reconciler, so the change is its own", r.name, m.name, took, r.name)
			return nil
		}
		f.logf("%s reconciled %s (taken in by %s) itself: tap another marker", r.name, m.name, took)
	}
	return fmt.Errorf("%s reconciled all %d markers itself", r.name, markerTries)
}

func (f *fleet) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rng.Int64N(int64(hi-lo)+1)).Round(time.Millisecond)
}

func (f *fleet) logf(format string, args ...any) {
	f.t.Logf("moves +%5.1fs: %s", time.Since(f.began).Seconds(), fmt.Sprintf(format, args...))
}

func (f *fleet) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d moves, %d replica kills, %d graceful restarts, %d pages followed a marker", f.moves, f.kills, f.restarts, f.signals)
	for _, d := range f.drivers {
		fmt.Fprintf(&b, "; %s %d taps", d.term.id, d.madeCount())
	}
	return b.String()
}

// checkMovedTerminal checks one terminal against its driver's record and
// its stopped outbox: seqs 1..n of one epoch, each stored once with the
// card it was confirmed for, the cursor at n, the outbox drained. Nothing
// killed the terminal, so every tap was answered.
func checkMovedTerminal(t testing.TB, ctx context.Context, pool *pgxpool.Pool, d *driver, st outboxState) {
	t.Helper()
	id := d.term.id
	if len(d.maybe) > 0 {
		t.Errorf("%s: %d taps unanswered, though the terminal was never killed", id, len(d.maybe))
	}
	n := len(d.bySeq)
	if st.Depth != 0 || st.LastSeq != uint64(n) || st.AckedThrough != uint64(n) {
		t.Errorf("%s: stopped outbox = %+v, want depth 0 and last_seq = acked_through = %d taps confirmed", id, st, n)
	}
	taps := storedTaps(t, ctx, pool, id)
	if len(taps) != n {
		t.Errorf("%s: %d taps stored, %d confirmed", id, len(taps), n)
	}
	bad := 0
	for i, r := range taps {
		want := storedTap{Epoch: st.StoreEpoch, Seq: int64(i + 1), CardID: d.bySeq[uint64(i+1)], Answer: r.Answer}
		if r != want {
			if bad++; bad <= 10 {
				t.Errorf("%s: stored tap %d = %+v, want %+v", id, i+1, r, want)
			}
		}
	}
	checkCursor(t, ctx, pool, id, st.StoreEpoch, n)
}

// checkVisitedEveryReplica checks, in the replicas' own logs, that every
// terminal opened sync sessions on every replica.
func checkVisitedEveryReplica(t testing.TB, reps []*replica, ids []string) {
	t.Helper()
	for _, id := range ids {
		var per []string
		for _, r := range reps {
			n := r.sessionsOpened(id)
			if n == 0 {
				t.Errorf("terminal %s never opened a session on %s", id, r.name)
			}
			per = append(per, fmt.Sprintf("%s %d", r.name, n))
		}
		t.Logf("terminal %s: sessions on %s", id, strings.Join(per, ", "))
	}
}

// checkLedger checks, through the ledger's own reads, that every confirmed
// tap was reconciled once, for the person holding its card, and that each
// person's marks and work periods are what a derivation from scratch of
// their taps gives: the replicas' reconcilers, taking batches in whatever
// order and grouping, agreed.
func checkLedger(t testing.TB, ctx context.Context, store *ledger.Store, viewer, site int64, holders map[string]int64, confirmed map[ledger.TapID]string) {
	t.Helper()
	if len(confirmed) >= ledger.MaxTapRows {
		t.Fatalf("%d taps: more than one ledger.Taps query returns", len(confirmed))
	}
	rows, err := store.Taps(ctx, viewer, ledger.TapQuery{SiteID: site})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[ledger.TapID]bool, len(rows))
	byPerson := make(map[int64][]ledger.TapRow)
	bad := 0
	errorf := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range rows {
		card, ok := confirmed[r.Tap]
		switch {
		case seen[r.Tap]:
			errorf("tap %s is in the ledger twice", r.Tap.Ref())
		case !ok:
			errorf("tap %s in the ledger was never confirmed", r.Tap.Ref())
		case r.CardIdent != card:
			errorf("tap %s has card %s in the ledger, was confirmed for %s", r.Tap.Ref(), r.CardIdent, card)
		case r.PersonID == nil || *r.PersonID != holders[card]:
			errorf("tap %s of card %s is in the ledger for person %v, want %d", r.Tap.Ref(), card, r.PersonID, holders[card])
		default:
			byPerson[*r.PersonID] = append(byPerson[*r.PersonID], r)
		}
		seen[r.Tap] = true
	}
	for id := range confirmed {
		if !seen[id] {
			errorf("confirmed tap %s is not in the ledger", id.Ref())
		}
	}

	type periodKey struct {
		Start, End                      time.Time
		StartRef, EndRef                string
		MissingCheckout, MissingCheckin bool
	}
	marks := make(map[string]int)
	var periods int
	for person, taps := range byPerson {
		events := make([]ledger.Event, len(taps))
		for i, r := range taps {
			mode, ok := ledger.ParseMode(r.Mode)
			if !ok {
				t.Fatalf("tap %s has mode %q", r.Tap.Ref(), r.Mode)
			}
			events[i] = ledger.Event{Ref: r.Tap.Ref(), At: r.EventTime, Mode: mode}
		}
		want := ledger.Derive(events, ledger.DefaultRules)
		for _, r := range taps {
			ref := r.Tap.Ref()
			marks[r.Mark]++
			var dir string
			if r.Direction != nil {
				dir = *r.Direction
			}
			if m, d := want.Marks[ref].String(), want.Directions[ref].String(); r.Mark != m || dir != d {
				errorf("person %d: tap %s marked %s %s, a derivation from scratch gives %s %s", person, ref, r.Mark, dir, m, d)
			}
		}
		stored, err := store.Periods(ctx, viewer, ledger.PeriodQuery{SiteID: site, PersonID: person})
		if err != nil {
			t.Fatal(err)
		}
		var got, derived []periodKey
		for _, p := range stored {
			k := periodKey{StartRef: p.StartRef, EndRef: p.EndRef, MissingCheckout: p.MissingCheckout, MissingCheckin: p.MissingCheckin}
			if p.Start != nil {
				k.Start = p.Start.UTC()
			}
			if p.End != nil {
				k.End = p.End.UTC()
			}
			got = append(got, k)
		}
		for _, p := range want.Periods {
			derived = append(derived, periodKey{Start: p.Start.UTC(), End: p.End.UTC(), StartRef: p.StartRef, EndRef: p.EndRef,
				MissingCheckout: p.MissingCheckout, MissingCheckin: p.MissingCheckin})
		}
		byRefs := func(a, b periodKey) int { return strings.Compare(a.StartRef+" "+a.EndRef, b.StartRef+" "+b.EndRef) }
		slices.SortFunc(got, byRefs)
		slices.SortFunc(derived, byRefs)
		if diff := cmp.Diff(derived, got); diff != "" {
			errorf("person %d: work periods differ from a derivation from scratch of their %d taps (-derived +stored):\n%s", person, len(taps), diff)
		}
		periods += len(got)
	}
	t.Logf("ledger: %d taps of %d people reconciled, marks %v, %d work periods", len(rows), len(byPerson), marks, periods)
}
