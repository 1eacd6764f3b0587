// Package registry keeps who and what the ledger is about: organisations
// (the tenants), sites and the contractors working on them, persons with
// their identity numbers encrypted at rest, ID06 cards and their chips, and
// where each terminal stands.
//
// Every method runs on behalf of an organisation (the viewer) and only
// touches what that organisation controls: its own staff and cards, and the
// sites it owns. An identity number is parsed and validated (idnum), stored
// encrypted with AES-256-GCM bound to its row, and found again through a
// keyed hash (pii); it never appears in errors or logs.
//
// ImportCSV loads the staff list a contractor sends before work starts:
// every line is checked first, errors are reported line by line, and
// nothing is imported unless every line is right.
package registry
