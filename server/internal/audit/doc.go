// Package audit keeps the audit log: who read, exported or changed whose
// personal data, and when.
//
// The product promises that every processing of personal data is logged:
// every read of an identity number by a person, every export of a ledger,
// every register extract, every anonymisation by the retention job. Callers
// write the entry with Record inside the transaction that does the work, so
// the work and its log entry commit together or not at all. A read that
// returns data to a user commits its entry before the data leaves the
// server.
//
// The table, audit_log, is append-only: triggers in migration 0003 refuse
// UPDATE, DELETE and TRUNCATE. An entry names the actor (a user id or e-mail,
// or a system job such as "system:retention") and the tenant it acted for,
// the action (a dotted lower-case name, see the Action constants), and the
// tenant, site and person the data belongs to.
//
// An entry never holds an identity number. Detail is for ids and counts;
// Record refuses a detail in which any run of ten or more digits, or a
// number written like a personnummer or organisationsnummer (NNNNNN-NNNN,
// NNNNNNNN-NNNN), appears, as a guard against a caller passing one by
// mistake. Refer to people, organisations and sites by their ids, and write
// times in RFC 3339, not as Unix numbers.
//
// List shows a tenant the entries about its own data (org_id) and those of
// its own users (actor_org_id), newest first, filtered by person, site (or
// a set of sites: a site manager's view), actor, action and time, in pages
// (BeforeID).
package audit
