// Package inspect lets an inspector (Skatteverket's kontrollbesök) see on the
// terminal itself who is registered as present on the site, when the
// network is down and the server's combined ledger cannot be reached: the
// domain's "availability on site" rule.
//
// # What the list is made of
//
// The terminal has no ledger. It has the card roster the server last sent
// (the card cache: for every card id, the holder's name and employer), its
// outbox (taps the server has not acknowledged yet), and the Journal this
// package keeps: every tap the agent recorded in the last 24 hours (at most
// 50 000), in a bbolt file of its own, because an acknowledged tap leaves
// the outbox. Report joins them: the journal and the outbox's pending taps
// (by store epoch and sequence), names from the card cache.
//
// Who is in now is derived per card as the server derives periods (Derive,
// after ledger.Derive): on an in- or out-reader the tap has that direction;
// on a toggle reader a tap checks out when the holder has an open period
// and in otherwise (for a day's taps, their parity: 1st in, 2nd out, ...);
// a repeat within 30 s counts for nothing; a period open over 16 h lapses.
// The reader modes are configured on the terminal (Modes, --inspect-modes),
// since the server does not send its terminal assignment; they must match
// what the site manager set there.
//
// This is an approximation and the server's ledger is authoritative: the
// terminal knows only its own taps (a check-out at another terminal, or a
// correction, is unknown to it), it knows people only by their card, and it
// trusts its own clock. The pages say so.
//
// Personnummer are not on the terminal (card data carries names and
// employers only): the inspector compares identities on site, with the ID06
// card and an ID document. The pages say that too.
//
// # The pages
//
// Handler serves /inspect/ on the kiosk's loopback listener (package kiosk
// mounts it): a PIN form, then the list and the last day's taps, the list
// as CSV (semicolons, UTF-8 with BOM, CRLF, as the server's exports) and as
// a printable HTML page to download, and "Spara på terminalen", which
// writes both to HandlerOptions.OutDir (a USB stick, or the state
// directory). Everything is embedded and nothing is loaded from outside, so
// the pages work with no network. Every view, download and save is logged
// (counts only, never a name).
//
// # The PIN
//
// The site PIN is configured as an argon2id hash (HashPIN; a flag or a
// file). Guard compares in constant time, one attempt at a time, and after
// three wrong PINs makes each further attempt wait, doubling from 2 s up to
// 5 min; a right PIN resets it. A session (cookie, HttpOnly, SameSite=Strict,
// Path=/inspect/) lasts 15 minutes idle and 2 hours at most; forms carry a
// CSRF token; requests with a Host other than loopback (DNS rebinding) or a
// foreign Origin are refused.
package inspect
