// Package export produces the combined staff ledger of a site for an
// inspector (kontrollbesök) and for the byggherre: as it is now or as it was
// known at any past moment, for the whole site, one contractor or one
// person, on screen (View) or as a file (Build) in three formats:
//
//   - PDF, printable, in Swedish: the site, the byggherre, the moment, who
//     was present then, every work period per contractor with the person's
//     full personnummer and the flags a reader must notice (manual times,
//     missing check-in or check-out), the corrections, and "Sida 1 av N"
//     on every page.
//   - CSV: one row per period, semicolon-separated, UTF-8 with a BOM so that
//     Excel shows å, ä and ö, CRLF line ends, RFC 4180 quoting, a Swedish
//     header, local times "2006-01-02 15:04:05".
//   - JSON, schema "liggare.personalliggare/v1" below: complete and
//     machine-readable, meant for electronic transfer to Skatteverket.
//
// # Who sees what
//
// The web layer decides who may call Build and View (account.Allowed with
// ActExport, ActViewIdentity) and which organisation to pass as viewer
// (account.ViewerOrg): the site's owner for the combined ledger, which an
// inspector's grant reads on the owner's behalf, or a contractor for its
// own staff. Every query is scoped by the viewer, as ledger and registry
// scope theirs. Full identity numbers are decrypted here (registry
// IdentityNumber), which is why both entry points write an audit entry
// (audit.ActionLedgerExport, ActionLedgerView) with counts and ids, never a
// number, before anything is returned: nothing leaves the server unless its
// read is on record. Filenames carry the site and the moment, no personal
// data.
//
// # The moment
//
// Request.AsOf zero is now: the current ledger, and the on-site list now.
// A past AsOf gives the ledger as the server knew it then (work periods are
// versioned by when the server knew them, see package ledger), the on-site
// list at that moment, and only the corrections made by then: what an
// inspector would have been shown.
//
// # Limits
//
// MaxPeriods (200 000) bounds any export or view, MaxPDFPeriods (50 000) a
// PDF; beyond them Build fails with ErrTooLarge and the message says to
// narrow by contractor, person or time (Request.From, To). Identity numbers
// are decrypted identityWorkers at a time (one registry query each).
// BenchmarkInspectorView measures an inspector's view and then the JSON
// export of a site with 2 000 people present and 12 000 periods, each
// audited: about 100 ms + 125 ms on a two-core development machine, within
// the 300 ms the issue asks of the view.
//
// # Schema liggare.personalliggare/v1
//
// One JSON object, UTF-8, one record per line (each array element on a
// line of its own, compact). Times are RFC 3339 with the site's UTC
// offset (never ambiguous, unlike the local times of the PDF and CSV);
// a missing time is null. References ("c12", "p34", "k5") are stable
// within one server: the same contractor, person or correction has the same
// reference in every export. Fields are only added within v1; consumers
// must ignore fields they do not know.
//
//	{
//	  "schema":       "liggare.personalliggare/v1",
//	  "generated_at": time,        when the file was made
//	  "as_of":        time,        the moment the ledger is shown as of
//	  "current":      bool,        as_of is the time of the request (the live ledger)
//	  "time_zone":    "Europe/Stockholm",
//	  "selection": {               what the ledger was narrowed to; null: not narrowed
//	    "contractor": ref|null, "person": ref|null, "from": time|null, "to": time|null
//	  },
//	  "site": {"identifikationsnummer": "ABCDEFGHIJ123", "name": str, "address": str},
//	  "byggherre": {"name": str, "org_number": str},
//	  "contractors": [{            the site's owner first, then by name
//	    "ref": "c1", "name": str, "org_number": "556000-0001" (a sole trader's: masked),
//	    "site_owner": bool,        holds the byggherre's duties for the ledger
//	    "hired_by": ref|null,      who hired it; null for the site's owner
//	    "hired_by_chain": [ref],   who hired it, who hired them, ... up to the owner
//	    "added_at": time|null, "removed_at": time|null
//	  }],
//	  "persons": [{                by contractor, then name
//	    "ref": "p1", "name": str,
//	    "identity_kind": "personnummer" | "samordningsnummer" | "foreign",
//	    "identity_number": "198112189876" (twelve digits; a foreign number as issued) | null (anonymised),
//	    "identity_country": "DE" | null (Swedish),
//	    "anonymised": bool,
//	    "contractor": ref,         the employer whose ledger the person is in
//	    "actual_employer": {"name", "org_number"} | null
//	                               the actual employer when not the contractor
//	                               (proposed from July 2027); not yet recorded: null
//	  }],
//	  "work_periods": [{           by person, then start
//	    "person": ref, "contractor": ref,
//	    "start": time|null,        null: a check-out without a check-in
//	    "end": time|null,          null: open, or the check-out is missing
//	    "start_manual": bool, "end_manual": bool,   entered afterwards (see corrections)
//	    "missing_checkin": bool,
//	    "missing_checkout": bool,  checked in again while open, or open past the limit
//	    "open": bool,              started, not ended
//	    "overdue": bool,           open longer than the ledger allows at as_of
//	    "start_source": "tap" | "correction" | "",
//	    "end_source": "tap" | "correction" | "",
//	    "recorded_from": time      since when the server knows the period as it is
//	  }],
//	  "on_site": [{"person": ref, "contractor": ref, "since": time}],
//	                               registered as present at as_of
//	  "corrections": [{            oldest first; they only add, the original stays
//	    "ref": "k1",
//	    "kind": "manual_period" | "set_checkout" | "void_tap" | "reassign_tap" | "assign_card" | "withdraw",
//	    "person": ref|null, "tap": "tap:TERMINAL/EPOCH/SEQ"|null, "card_ident": str|null,
//	    "start": time|null, "end": time|null,
//	    "withdraws": ref|null, "withdrawn_by": ref|null,
//	    "reason": str, "author": str, "created_at": time
//	  }]
//	}
//
// testdata/v1.golden.json pins the shape (go test -run TestJSONGolden
// -update rewrites it; a diff there is a schema change to think about).
package export
