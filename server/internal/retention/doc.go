// Package retention ends the life of personal data the ledger no longer
// needs, and tells a person everything held about them until then.
//
// # The rule
//
// Each contractor keeps its ledger for two years after the end of the
// calendar year in which its tax year ended (SFL, as the team reads it; see
// KeepUntil, whose comment marks what is unconfirmed). During that time the
// data must stay, and the right to erasure does not apply. After it, GDPR's
// storage limitation says personal data should go, unless a legal hold
// (organisations.legal_hold) applies. KeepUntil and Cutoff are the rule as
// pure functions; an organisation's tax_year_end_month and retention_years
// feed them.
//
// # The job
//
// Job.RunOnce, run daily by Job.Run, anonymises what is past retention:
//
//   - A person, when their latest activity (registration, cards registered
//     or changed, work periods, taps, corrections concerning them) is past
//     the retention of their employer and of every organisation owning a
//     site they appear on, and none of those is under legal hold. The
//     byggherre keeps the combined ledger of its sites, so its settings and
//     holds count too.
//   - The card id of a tap no person was found for (an unknown card), once
//     past the retention of the site's owner; these are personal data of
//     people we cannot name. Taps at no site use the default rule.
//   - The card id inside dead letters and quarantined conflicts, reckoned
//     from where their terminal stood when they arrived.
//
// Anonymising a person, in one transaction with its audit entry
// (audit.ActionRetentionAnonymise, actor "system:retention", counts only):
//
//   - persons: name becomes "Anonymiserad"; id_enc the empty byte string
//     (nothing to decrypt, rather than a ciphertext of nothing: a key
//     rotation must skip anonymised rows, and pii.KeyIDOf tells them apart);
//     id_index 32 random bytes (unique as the schema wants, matching no
//     number, so registering the person again makes a new person);
//     id_masked "********-****"; id_country NULL; anonymised_at set.
//   - cards: card_number becomes "ANON" followed by the card id (unique,
//     and never a valid ID06 number); their chips (card_chips) are deleted.
//   - taps and tap_resolutions of taps resolved to the person, and
//     corrections concerning them: the card id becomes "ANONYMISED".
//   - work periods stay as they are: the ledger's history keeps its shape
//     (who worked when is now "Anonymiserad", still tied to the employer
//     and the site), and so do audit entries, which hold ids and counts.
//
// Raw taps are otherwise immutable (design invariant 4): retention is the
// one exception, and only after the duty to keep them has ended. A terminal
// that sent an anonymised tap again would have it quarantined as a conflict
// (same identity, other content), never overwrite it; terminals drop a tap
// once acknowledged, so this takes a restored outbox.
//
// What stays, on purpose: the person's id and the free-text reasons of
// corrections (written by site managers; they should hold no personal data);
// tap_conflicts.payload_sha256, a hash of the original payload kept as the
// conflict's identity.
//
// Each step checks again under row locks (the person FOR NO KEY UPDATE, the
// organisations FOR SHARE) before it changes anything, so a tap arriving,
// a legal hold being set or a second replica running cannot slip past; a
// session advisory lock (LockKey) keeps replicas from doing the work twice.
// Running it again changes nothing.
//
// # Register extracts
//
// Extract gives an employer everything held about one of its people
// (registerutdrag, GDPR articles 15 and 20): the person with the full
// identity number, cards and chips, every version of every work period,
// every tap, every correction and the audit entries about them. It is
// logged in the audit log. WriteJSON writes it in a documented,
// versioned JSON format (see RegisterExtract).
package retention
