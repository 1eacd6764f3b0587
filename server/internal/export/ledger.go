package export

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Ledger is the combined ledger of a site, or the part of it a request
// selected, as one export or view shows it. View returns it for the web
// layer's pages; Render writes it as a file. It holds full identity numbers.
type Ledger struct {
	Site Site
	// Moment is the moment the ledger is shown as of: the server's
	// knowledge then, and the on-site list then.
	Moment time.Time
	// Current: Moment is the time of the request, the ledger as it is now.
	Current     bool
	GeneratedAt time.Time
	// Location is the site's time zone (Europe/Stockholm): every time is
	// shown in it.
	Location *time.Location
	Filter   Filter
	// MaxOpen is the ledger's limit for an open period (ledger.Rules).
	MaxOpen time.Duration
	// Contractors: the site's owner first, then the contractors by name.
	Contractors []Contractor
	// Persons, by contractor (in the order of Contractors), then name.
	Persons []Person
	// Periods, by person (in the order of Persons), then start.
	Periods []Period
	// OnSite is who was registered as present at Moment: open periods not
	// flagged nor overdue, in the order of Persons.
	OnSite []Presence
	// Corrections known at Moment, oldest first.
	Corrections []Correction
}

// Filter is what a request narrowed the ledger to.
type Filter struct {
	OrgID    int64
	PersonID int64
	From, To time.Time
}

// Site is the construction site.
type Site struct {
	ID int64
	// Ident is Skatteverket's identifikationsnummer.
	Ident              string
	Name               string
	Address            string
	TimeZone           string
	ByggherreName      string
	ByggherreOrgNumber string
	// OwnerOrgID holds the byggherre's duties for the site.
	OwnerOrgID int64
}

// Contractor is a business working on the site.
type Contractor struct {
	OrgID     int64
	Name      string
	OrgNumber string
	// SiteOwner: the organisation holding the byggherre's duties (the
	// byggherre or its general contractor).
	SiteOwner bool
	// HiredBy is the organisation that hired this contractor; 0 for the
	// site's owner.
	HiredBy   int64
	AddedAt   time.Time
	RemovedAt *time.Time
}

// Person is a worker with periods in the ledger.
type Person struct {
	PersonID int64
	// OrgID is the employer (the contractor whose ledger the person is in).
	OrgID int64
	Name  string
	// IDKind is personnummer, samordningsnummer or foreign.
	IDKind    string
	IDCountry string
	// IDNumber is the full identity number in its canonical form (twelve
	// digits; "CC:number" for a foreign one); empty when it could not be
	// read (anonymised after retention).
	IDNumber   string
	IDMasked   string
	Anonymised bool
	// ActualEmployer is the worker's actual employer when it is not the
	// contractor (proposed for July 2027): not yet recorded, always nil.
	ActualEmployer *Employer
}

// Employer names an organisation.
type Employer struct {
	Name      string
	OrgNumber string
}

// Period is one work period.
type Period struct {
	PeriodID, PersonID, OrgID int64
	// Start and End are zero when missing.
	Start, End       time.Time
	StartRef, EndRef string
	StartManual      bool
	EndManual        bool
	MissingCheckout  bool
	MissingCheckin   bool
	// Overdue: open longer than the rules allow at Moment.
	Overdue bool
	// RecordedFrom is when the server came to know the period as it is.
	RecordedFrom time.Time
}

// Open reports whether the period has a start and no end.
func (p Period) Open() bool { return !p.Start.IsZero() && p.End.IsZero() }

// Presence is one person registered as present at the moment.
type Presence struct {
	PersonID, OrgID int64
	Since           time.Time
}

// Correction is a correction of the ledger: it only adds, the original
// stays.
type Correction struct {
	ID          int64
	Kind        string
	PersonID    int64
	Tap         string // "tap:T/E/S"
	CardIdent   string
	Start, End  time.Time
	Withdraws   int64
	WithdrawnBy int64
	Reason      string
	Author      string
	CreatedAt   time.Time
}

// Contractor returns the contractor with org id, and false if none.
func (l *Ledger) Contractor(org int64) (Contractor, bool) {
	i := slices.IndexFunc(l.Contractors, func(c Contractor) bool { return c.OrgID == org })
	if i < 0 {
		return Contractor{}, false
	}
	return l.Contractors[i], true
}

// Person returns the person with id, and false if none.
func (l *Ledger) Person(id int64) (Person, bool) {
	i := slices.IndexFunc(l.Persons, func(p Person) bool { return p.PersonID == id })
	if i < 0 {
		return Person{}, false
	}
	return l.Persons[i], true
}

// HiredByChain lists who hired the contractor, nearest first, up to the
// site's owner. A loop in the records ends the chain.
func (l *Ledger) HiredByChain(org int64) []Contractor {
	var out []Contractor
	seen := map[int64]bool{org: true}
	c, ok := l.Contractor(org)
	for ok && c.HiredBy != 0 && !seen[c.HiredBy] {
		seen[c.HiredBy] = true
		next, found := l.Contractor(c.HiredBy)
		if !found {
			break
		}
		out = append(out, next)
		c, ok = next, true
	}
	return out
}

// sort puts contractors, persons, periods, the on-site list and corrections
// in the order their fields document. Every order ends on an id, so it is
// total and an unstable sort gives the same result every time.
func (l *Ledger) sort() {
	orgKey := make(map[int64]string, len(l.Contractors))
	for _, c := range l.Contractors {
		orgKey[c.OrgID] = sortKey(c.Name)
	}
	slices.SortFunc(l.Contractors, func(a, b Contractor) int {
		if a.SiteOwner != b.SiteOwner {
			if a.SiteOwner {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(orgKey[a.OrgID], orgKey[b.OrgID]), strings.Compare(a.Name, b.Name), cmp.Compare(a.OrgID, b.OrgID))
	})
	orgRank := make(map[int64]int, len(l.Contractors))
	for i, c := range l.Contractors {
		orgRank[c.OrgID] = i
	}
	type personKey struct {
		org  int
		name string
	}
	keys := make(map[int64]personKey, len(l.Persons))
	for _, p := range l.Persons {
		keys[p.PersonID] = personKey{orgRank[p.OrgID], sortKey(p.Name)}
	}
	slices.SortFunc(l.Persons, func(a, b Person) int {
		ka, kb := keys[a.PersonID], keys[b.PersonID]
		return cmp.Or(cmp.Compare(ka.org, kb.org), cmp.Compare(ka.name, kb.name), strings.Compare(a.Name, b.Name),
			cmp.Compare(a.PersonID, b.PersonID))
	})
	personRank := make(map[int64]int, len(l.Persons))
	for i, p := range l.Persons {
		personRank[p.PersonID] = i
	}
	slices.SortFunc(l.Periods, func(a, b Period) int {
		return cmp.Or(cmp.Compare(orgRank[a.OrgID], orgRank[b.OrgID]), cmp.Compare(personRank[a.PersonID], personRank[b.PersonID]),
			periodTime(a).Compare(periodTime(b)), cmp.Compare(a.PeriodID, b.PeriodID))
	})
	slices.SortFunc(l.OnSite, func(a, b Presence) int {
		return cmp.Or(cmp.Compare(personRank[a.PersonID], personRank[b.PersonID]), a.Since.Compare(b.Since))
	})
	slices.SortFunc(l.Corrections, func(a, b Correction) int { return cmp.Compare(a.ID, b.ID) })
}

func periodTime(p Period) time.Time {
	if p.Start.IsZero() {
		return p.End
	}
	return p.Start
}

// sortKey orders names the way a Swedish reader expects: case-insensitive,
// with å, ä, ö after z. It is not full collation, which would need a table
// this package does not carry; it is right for the Swedish alphabet.
func sortKey(s string) string {
	return swedishOrder.Replace(strings.ToLower(s))
}

// swedishOrder moves å, ä, ö (and æ, ø as Danish/Norwegian names sort them)
// past z; other accented letters stay among their base letters well enough.
var swedishOrder = strings.NewReplacer("å", "{", "ä", "|", "æ", "|", "ö", "}", "ø", "}", "é", "e", "ü", "y")
