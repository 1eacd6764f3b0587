// Package enroll lets a new kiosk in: a site manager creates a single-use
// enrollment code bound to one site, whoever installs the kiosk types it
// there, and the kiosk trades it for a credential of its own.
//
// The exchange, over the server's main listener (TLS when configured):
//
//  1. CreateCode (the CLI, or a site manager in the web UI) stores the
//     SHA-256 of a random ten-character code (Alphabet: no 0/O, 1/I) with
//     its site, reader direction, optional terminal id and expiry (24 h by
//     default), and writes an audit entry. The code itself is shown once.
//  2. The kiosk creates an Ed25519 key pair, signs EnrollMessage with it
//     and posts an EnrollRequest to EnrollPath. Redeem takes the code's row
//     FOR UPDATE, so of two concurrent redemptions one wins and the other
//     finds it used; it registers the terminal (or finds it: re-enrollment),
//     revokes the terminal's earlier credentials and key, stores the new
//     public key, issues a credential, assigns the terminal to the code's
//     site from now on (terminal_assignments, as registry.AssignTerminal
//     does), marks the code used and writes an audit entry, all in one
//     transaction.
//  3. Later the kiosk may rotate its credential (RotatePath): the request
//     carries the current credential and a signature by the terminal's key
//     over RotateMessage. The new credential and the old are both valid
//     until the new one is first used (ConfirmPath, or a sync connection);
//     then the old one is revoked (auth.Terminals.Confirm).
//
// The web UI lists a site's unused codes (OutstandingCodes, never the
// codes themselves), cancels one (CancelCode: its lifetime ends now, and
// the row stays), shows each terminal's credential state (Credentials),
// and issues a re-enrollment code bound to a terminal id as its
// "rotate": the kiosk gets a new key and credential, keeps its id and
// outbox, and its old credential works until the code is used.
//
// A revoked terminal (Revoke) is refused at its next connection and cut
// off at once on a live one, on every replica (auth.CredentialCache); its
// taps stay in its outbox. Enrolling
// it again with the same terminal id keeps that outbox: the outbox belongs
// to the kiosk's disk, not to the credential, and its store epoch and
// sequences carry on, so the buffered taps are uploaded under their
// original identities.
//
// The wire types are JSON and are declared again, identically, by the
// terminal (terminal/internal/enroll): the two cannot share a package.
// Golden tests on both sides pin the signed messages.
package enroll
