// Package loadgen drives the real server with many simulated terminals on
// one machine, for benchmarks and for the liggare-load command.
//
// Nothing is mocked. StartEnv runs the real binaries as child processes: a
// private PostgreSQL through "liggare-server devdb" and "liggare-server
// serve" on a loopback port, with credentials issued by "liggare-server
// terminal add". The terminals live in this process: each is a real bbolt
// outbox (fsync on every commit, as on a kiosk) in the environment's
// directory and a real uplink speaking syncproto over a real websocket. So a
// figure taken with loadgen includes every cost a fleet puts on the server,
// and also the terminals' own costs, which on a small machine compete with
// the server for the same cores: keep that in mind when reading one.
//
// A typical run:
//
//	env, err := loadgen.StartEnv(ctx, loadgen.Options{})
//	defer env.Close()
//	terms, err := env.AddTerminals(ctx, 256)
//	err = loadgen.FillAll(ctx, terms, 1000)   // taps buffered while offline
//	loadgen.StartAll(terms)                   // uplinks connect and upload
//	err = loadgen.WaitDrained(ctx, terms)     // every tap acknowledged and compacted
//
// For connection counts in the thousands, DialIdle opens a bare session (the
// Hello/Welcome handshake, then pings only) without an outbox behind it, and
// ServerRSS reads the server's resident memory.
//
// Options.Replicas runs several servers on the one PostgreSQL, as replicas
// behind a load balancer; terminals are spread over them in turn.
//
// Priority. On a small machine the terminals compete with the server for
// the same cores, and a starved generator sends late and measures its own
// starvation; more replicas (and their PostgreSQL backends) starve it
// more. Options.Nice and FavourSelf run the system under test below the
// generator, alike in every run compared (see priority.go for how, with
// and without the kernel's autogroup), and CPU reports each part's time
// waiting for a core, so a report shows whether its generator was
// starved.
//
// Fleets. A Terminal holds two open files (its bbolt outbox and its
// websocket), and a process without CAP_SYS_RESOURCE cannot raise its hard
// RLIMIT_NOFILE (20 000 on the machine of docs/benchmarks.md): 10 000 real
// outboxes do not fit in one process. SimTerminal is the lighter kind for
// such fleets: the same protocol on a real websocket (Hello, Batches
// pipelined at the uplink's window and size, the server's Acks, pings, the
// uplink's backoff), but taps kept in memory and no Status messages.
// AddMembers adds terminals of either kind (KindOutbox, KindSim) behind the
// Member interface, and every report names the kind it used.
//
// Both kinds measure the ack latency of each tap: from the moment it was
// durable on the terminal (the outbox commit, or the in-memory append)
// until the terminal had the server's Ack for it (the uplink's OnAck).
//
// The scenarios of the liggare-load command live here, so that tests can
// run them: Storm (every terminal reconnects at once with taps buffered),
// Idle (connected terminals, server memory per connection) and Peak (a
// morning 06:00-09:00 compressed into a window, with network outages).
// Each returns a Report.
//
// Tap-to-screen. Terminals registered with "terminal add" stand at no
// site, so no page shows their taps. With ScenarioConfig.Sites the peak
// instead sets a customer up as an operator and its admin would, over the
// real interfaces only (SetUpCustomer): "liggare-server org create", the
// admin's first sign-in (password change, TOTP enrolment) through the
// shared internal/webclient, sites and a contractor on each through the
// admin pages, the staff list (one person and ID06 card per tap) through
// the import page, and one enrollment code per terminal from its site's
// terminals page, redeemed at the enrollment endpoint by
// terminal/internal/enroll. ScreenWatch then follows the live page of a
// sample of the sites with the admin's one session and measures each tap
// there from durable on the terminal until a fragment the page fetched on
// a change event shows the person; a tap never shown is counted as missed.
// Setup time is reported apart from the measured phase.
//
// Children are started with a parent-death signal, so a benchmark killed
// half-way does not leave a PostgreSQL running; Close stops them in order
// and removes the directory it created.
package loadgen
