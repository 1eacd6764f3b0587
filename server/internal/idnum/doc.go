// Package idnum parses and validates the identifiers a staff ledger entry is
// made of: Swedish personal identity numbers, organisation numbers, foreign
// identity numbers, the site's identifikationsnummer and ID06 card numbers
// and chip UIDs. Everything here is a pure function: no I/O, no clock (the
// caller passes now), no global state.
//
// # What the law asks for
//
// A ledger entry (SFL 39 kap. 12 §, SKVFS 2015:6) names the worker by name
// and personnummer or samordningsnummer, or a foreign identity number when the
// worker has neither, and the contractor by name and organisation number (a
// sole trader's organisation number is his personnummer). Numbers use digits
// 0–9. The site is named by the identifikationsnummer Skatteverket issued to
// the byggherre. ID06 cards are not required by law, only by contract, but
// they are how most workers check in.
//
// # Personnummer and samordningsnummer
//
// Skatteverket's rules, as implemented by ParsePersonNumber:
//
//   - A number is YYMMDD, a three-digit birth number NNN, and a check digit
//     C computed with the Luhn algorithm over the ten-digit form YYMMDDNNN.
//   - The ten-digit form has no century. Its separator carries it: '-' for a
//     person under 100, '+' from the year the person turns 100. Input without
//     separator is read as '-'. The century is the latest one that puts the
//     birth date not after now (and one more century back for '+'), so the
//     reference date matters: pass the ledger's clock, in Swedish time.
//   - A samordningsnummer (coordination number, for people who are not or
//     not yet registered in Sweden) has the birth day plus 60 in the day
//     field (61–91); see coordinationDayOffset.
//   - The date must exist (29 February only in leap years; 1900 was not one)
//     and must not be in the future; years before 1800 are refused.
//
// The canonical form, which PersonNumber.String returns and which is what
// gets encrypted and indexed (package pii), is twelve digits YYYYMMDDNNNC
// with the day field as issued (so +60 for a samordningsnummer). Outside
// inspector views the number is shown as PersonNumber.Masked, YYYYMMDD-****.
//
// Unconfirmed: Skatteverket has proposed (reform expected around 2026) new
// samordningsnummer that may not follow the birth-day-plus-60 rule. The rule
// lives in one function, splitDay, so a new shape means changing it and its
// tests and nothing else.
//
// # Privacy of errors
//
// Errors get logged, and personnummer must never be (Swedish data protection
// act 3 kap. 10 §; see docs/domain.md). No error of this package contains
// more than eight consecutive digits of its input: at most the masked form
// YYYYMMDD-**** or a short field such as a month. The fuzz tests check this.
// Mind that PersonNumber.String returns the full number, so never hand a
// PersonNumber to fmt in a log message; slog is safe because PersonNumber
// and OrgNumber implement slog.LogValuer with the masked form.
//
// # Organisation numbers
//
// An organisationsnummer is NNNNNN-NNNC with a Luhn check digit; for legal
// entities the third digit is at least 2, which keeps it apart from a
// personnummer's month. A sole trader has no organisation number of his own
// and uses his personnummer, so ParseOrgNumber accepts one and says so with
// OrgNumber.IsPersonal. The twelve-digit form prefixes a company's number
// with "16".
//
// # Unconfirmed formats
//
//   - The site identifikationsnummer is 13 characters A–Z and 0–9; no check
//     digit is known, so only the shape is checked.
//   - The ID06 card number is printed as two letters naming the card supplier
//     and ten digits, with hyphens; where the hyphens sit is not confirmed, so
//     hyphens and spaces are accepted anywhere and dropped.
//   - A chip UID is what ISO/IEC 14443-A defines: 4, 7 or 10 bytes.
//
// # Errors
//
// Every parse error wraps exactly one of ErrFormat (wrong shape), ErrCheckDigit
// (Luhn check failed) or ErrDate (no such date, or in the future); test with
// errors.Is.
package idnum
