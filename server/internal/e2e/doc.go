// Package e2e holds the end-to-end tests of Liggare: they build the real
// liggare-server and liggare-terminal binaries, run them as separate
// processes against a real PostgreSQL cluster (server/internal/pgtest), and
// drive the terminals through their feed readers (tapsource.Feed) the way a
// worker drives a kiosk: present a card, wait for the green light.
//
// The tests prove, for the binaries as shipped:
//
//   - Exactly once under faults (TestExactlyOnceUnderFaults). Several
//     terminals tap thousands of cards while the test SIGKILLs terminals,
//     the server and PostgreSQL, restarts the server gracefully (which must
//     exit cleanly), cuts every connection and blackholes the network for
//     seconds. Every tap a terminal confirmed ("ok <seq>") ends
//     up in the taps table exactly once with the sequence it was confirmed
//     with, a tap whose confirmation was lost to a kill is stored at most
//     once, nothing else is stored, each (terminal, epoch) holds sequences
//     1..N without a gap, the ingest cursor is at N, nothing is dead-lettered
//     or quarantined, and every outbox drains to zero. These are design
//     invariants 1 (durable before success), 2 (ack after commit) and 3
//     (identity forever) observed from outside.
//   - A replaced outbox starts a new identity (TestReplacedOutboxNewEpoch):
//     deleting a terminal's outbox gives a new store epoch whose sequences
//     start again at 1, and the server keeps both epochs whole and apart.
//   - A revoked credential is refused (TestRevokedCredentialRefused): the
//     terminal's next connection is turned away, its taps stay in its
//     outbox, and the other terminals keep syncing.
//   - Replicas (TestReplicas). Three servers start at the same moment on one
//     empty database, so their migrations race: one replica applies them
//     all under the migration lock, each version is recorded once, the
//     schema equals a single run's, and every replica is ready. Four
//     terminals tap workers' cards without pause, each through a proxy of
//     its own, while the schedule moves them between replicas (cut and
//     re-point, waiting for the session on the new replica), SIGKILLs one
//     replica and restarts one gracefully; the replicas' logs show every
//     terminal syncing with every replica. Exactly once is checked as in
//     the chaos test, and through ledger.Store's reads every tap is in the
//     ledger once, for its card's holder, with marks and work periods equal
//     to ledger.Derive over that person's taps, whichever replica
//     reconciled what. A site manager signs in once (password, new
//     password, TOTP) and holds the event stream of a site page open on
//     every replica. With no terminal on replica R, a marker worker taps at
//     the marker site; the test listens on the notification channel and
//     knows each sender by its application_name, and once a marker's
//     notification came from another replica, R's page must get a change
//     event and show the marker (live updates fan out through
//     LISTEN/NOTIFY).
//
// restore_test.go restores one side from an older backup. A database that
// lost acknowledged taps records the gap as an alarm and the terminal drains
// its later taps; an outbox restored from an older copy moves its pending
// taps to a new epoch, so every tap the worker saw confirmed is stored or
// quarantined, never dropped.
//
// The network faults and moves come from a TCP proxy in the test
// (proxy_test.go) between the terminals and the server. The schedules of the
// chaos and the replicas tests are drawn from a seeded random source; the
// seed is logged, and -e2e.seed=N replays the same schedule (the timing of
// the processes still varies from run to run).
//
// The package has no code outside its tests; this file only documents it.
// Process logs are written to the test's artifact directory: run with
// -artifacts to keep them, otherwise their tails are logged on failure.
package e2e
