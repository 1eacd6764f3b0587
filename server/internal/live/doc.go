// Package live tells open pages that a site's ledger changed, across every
// replica of the server.
//
// The ledger's reconciler (and a correction made in a page) reports the
// sites whose ledger changed to Hub.Publish. The hub coalesces those reports
// for Options.Coalesce (100 ms): a morning peak of taps at one site becomes
// one message, not hundreds. It then sends the site ids, and nothing else,
// with
//
//	SELECT pg_notify('liggare_ledger', '12,57,803')
//
// cutting the list so that each payload stays below PostgreSQL's 8000-byte
// limit. Every replica holds one dedicated connection that LISTENs on the
// channel (reconnecting with backoff when it fails) and hands each id to the
// local subscribers of that site: a page following a site over server-sent
// events. A replica hears its own notifications too, so a site changed on
// replica A reaches a browser connected to replica B the same way as one on
// A. Payloads carry ids only: no names, no personal data, and the receiving
// page fetches what it may see with its own session.
//
// Each subscriber has a channel with room for one signal: a change while a
// signal is still waiting is a duplicate and is dropped, so a slow browser
// never holds up the hub and never queues more than "something changed".
// After the listening connection was lost and comes back, every subscriber
// is signalled, since changes may have gone unheard in between.
//
// Without a pool (tests, a single process without PostgreSQL) the hub
// delivers locally after the same coalescing.
package live
