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
// Children are started with a parent-death signal, so a benchmark killed
// half-way does not leave a PostgreSQL running; Close stops them in order
// and removes the directory it created.
package loadgen
