package retention

import (
	"time"
	// The rule is reckoned in Swedish calendar years wherever the server
	// runs, also in images without a zoneinfo database.
	_ "time/tzdata"
)

// The retention rule's parameters, as stored per organisation
// (organisations.tax_year_end_month, organisations.retention_years).
//
// The team's reading of the rule (domain.md, "Retention"; SFL 39 kap. as we
// understand it, not checked against the primary text): a contractor keeps
// its ledger for two years after the end of the calendar year in which its
// tax year ended. Unconfirmed facts live here, and only here, so that they
// are easy to change.
const (
	// DefaultTaxYearEndMonth is the month a tax year ends in when an
	// organisation has not said otherwise: December, the calendar year.
	DefaultTaxYearEndMonth = 12
	// DefaultRetentionYears is how many calendar years after the one in
	// which the tax year ended the ledger is kept (unconfirmed: the
	// reading of "two years after the end of the calendar year").
	DefaultRetentionYears = 2
	// MinRetentionYears is the shortest retention the rule allows; shorter
	// settings are raised to it (the schema refuses them too).
	MinRetentionYears = 2
	// TimeZone is where calendar days, months and years are reckoned.
	TimeZone = "Europe/Stockholm"
)

// stockholm is TimeZone. A Location is immutable; loading it cannot fail
// with time/tzdata linked in.
var stockholm = mustLoad(TimeZone)

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("retention: " + err.Error())
	}
	return loc
}

// taxYear returns the year in which the tax year holding day t ends, for a
// tax year ending with month m: a day after the end month belongs to the tax
// year ending next calendar year.
func taxYear(t time.Time, m int) int {
	if m < 1 || m > 12 {
		m = DefaultTaxYearEndMonth
	}
	local := t.In(stockholm)
	if int(local.Month()) > m {
		return local.Year() + 1
	}
	return local.Year()
}

// KeepUntil returns the moment the duty to keep a ledger entry ends, for an
// entry about a work period that started at periodStart, kept by an
// organisation whose tax year ends with month taxYearEndMonth (12: the
// calendar year) and whose retention is retentionYears. The entry must be
// kept before that moment; at and after it, it may be (and should be)
// anonymised.
//
// The team's interpretation (unconfirmed): the period belongs to the tax
// year ending at the end of month M of year y, where y is the period's
// (Stockholm) year if its month is M or earlier, and the next year
// otherwise. It is kept until the end of calendar year y + retentionYears,
// so KeepUntil is midnight, Stockholm time, starting 1 January of year
// y + retentionYears + 1.
//
// A month outside 1–12 is read as 12, and retentionYears below
// MinRetentionYears as MinRetentionYears: an invalid setting never shortens
// retention.
func KeepUntil(periodStart time.Time, taxYearEndMonth, retentionYears int) time.Time {
	retentionYears = max(retentionYears, MinRetentionYears)
	y := taxYear(periodStart, taxYearEndMonth)
	return time.Date(y+retentionYears+1, time.January, 1, 0, 0, 0, 0, stockholm)
}

// Cutoff returns the earliest period start that is still kept at now: an
// entry whose period started before Cutoff is past retention at now, one
// that started at or after it is not. It is KeepUntil turned around, for
// queries: for every t, !now.Before(KeepUntil(t, m, r)) == t.Before(Cutoff(now, m, r)).
func Cutoff(now time.Time, taxYearEndMonth, retentionYears int) time.Time {
	if taxYearEndMonth < 1 || taxYearEndMonth > 12 {
		taxYearEndMonth = DefaultTaxYearEndMonth
	}
	retentionYears = max(retentionYears, MinRetentionYears)
	// The latest tax year whose retention has ended at now: y + r + 1 <= year(now).
	y := now.In(stockholm).Year() - retentionYears - 1
	// That tax year ends with month m of year y; the next one starts after
	// it (time.Date turns month 13 into January of the next year).
	return time.Date(y, time.Month(taxYearEndMonth+1), 1, 0, 0, 0, 0, stockholm)
}
