package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/liggare/liggare/server/internal/idnum"
)

// Limits on a CSV import.
const (
	// MaxImportBytes bounds an uploaded file.
	MaxImportBytes = 5 << 20
	// MaxImportRows bounds the people in one file.
	MaxImportRows = 20000
	// MaxImportErrors bounds the line errors reported for one file.
	MaxImportErrors = 200
)

// ErrImport: the file was refused; the LineErrors say why. Nothing of it was
// imported.
var ErrImport = errors.New("registry: import refused")

// Problem says what kind of problem a LineError is, so that a user
// interface can say it in its own language.
type Problem string

// The problems an import reports.
const (
	ProblemTooLarge      Problem = "too_large"      // the file is over MaxImportBytes
	ProblemNoHeader      Problem = "no_header"      // no header line could be read
	ProblemMissingColumn Problem = "missing_column" // Column names the required column
	ProblemUnreadable    Problem = "unreadable"     // not valid CSV
	ProblemTooMany       Problem = "too_many"       // over MaxImportRows people
	ProblemNoPeople      Problem = "no_people"      // a header and nothing else
	ProblemInvalid       Problem = "invalid"        // Field's value is refused; Err says why
	ProblemRepeated      Problem = "repeated"       // the value is on line Prev too
	ProblemTaken         Problem = "taken"          // the card or chip is another's already
)

// LineError is one problem on one line of an imported file. Message is
// English, for logs and the CLI. Messages never repeat an identity number
// in full.
type LineError struct {
	Line    int
	Column  string
	Message string

	Problem Problem
	Field   Field // the refused field, for ProblemInvalid
	Err     error // the parser's error, if any (idnum.ErrCheckDigit, ...)
	Prev    int   // the earlier line, for ProblemRepeated
}

func (e LineError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return fmt.Sprintf("line %d, %s: %s", e.Line, e.Column, e.Message)
}

// ImportError carries every LineError of a refused file.
type ImportError struct {
	Lines []LineError
	// More counts the errors not listed (beyond MaxImportErrors).
	More int
}

func (e *ImportError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry: import refused, %d errors", len(e.Lines)+e.More)
	for i, l := range e.Lines {
		if i == 3 {
			b.WriteString("; ...")
			break
		}
		b.WriteString("; ")
		b.WriteString(l.Error())
	}
	return b.String()
}

func (e *ImportError) Unwrap() error { return ErrImport }

// ImportResult says what an accepted file did.
type ImportResult struct {
	People int // persons added or updated
	Cards  int // cards added or updated
}

// The columns an import understands, by their accepted header names
// (Swedish first). name and id are required; the rest optional.
var importColumns = map[string][]string{
	"name":        {"namn", "name", "för- och efternamn"},
	"id":          {"personnummer", "samordningsnummer", "id", "identitetsnummer", "person_number"},
	"country":     {"land", "country", "nationalitet"},
	"card":        {"kortnummer", "id06", "card_number", "card"},
	"chip":        {"chip", "chip_uid", "uid", "kort-uid"},
	"valid_until": {"giltig till", "giltig_till", "valid_until"},
}

type importRow struct {
	line   int
	person NewPerson
	card   *NewCard
}

// ImportCSV imports the viewer's staff list: one person per line, with an
// optional ID06 card. The file is UTF-8 (a BOM is fine), separated by
// semicolons or commas, with a header line naming the columns in Swedish or
// English. Every line is checked before anything is written, and the whole
// file is imported in one transaction, or refused with an *ImportError
// listing the lines to fix.
func (s *Store) ImportCSV(ctx context.Context, viewer int64, r io.Reader) (ImportResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return ImportResult{}, fmt.Errorf("registry: import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return ImportResult{}, &ImportError{Lines: []LineError{{Problem: ProblemTooLarge, Message: fmt.Sprintf("file larger than %d bytes", MaxImportBytes)}}}
	}
	rows, ierr := s.parseCSV(data)
	if ierr != nil {
		return ImportResult{}, ierr
	}
	var res ImportResult
	var lineErrs []LineError
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, row := range rows {
			pid, err := s.addPerson(ctx, tx, viewer, row.person)
			if err != nil {
				if !rowRefused(err) {
					return err
				}
				lineErrs = append(lineErrs, storeLineError(row.line, "", err))
				continue
			}
			res.People++
			if row.card == nil {
				continue
			}
			row.card.PersonID = pid
			if _, err := s.addCard(ctx, tx, viewer, *row.card); err != nil {
				if !rowRefused(err) {
					return err
				}
				lineErrs = append(lineErrs, storeLineError(row.line, "kortnummer", err))
				continue
			}
			res.Cards++
		}
		if len(lineErrs) > 0 {
			return ErrImport // roll back everything
		}
		return nil
	})
	if len(lineErrs) > 0 {
		return ImportResult{}, capErrors(lineErrs)
	}
	if err != nil {
		return ImportResult{}, fmt.Errorf("registry: import: %w", err)
	}
	return res, nil
}

// rowRefused tells a refusal of a row's values from a failure of the
// database, which aborts the import as a whole.
func rowRefused(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrExists)
}

// storeLineError is a LineError for a row the store refused.
func storeLineError(line int, column string, err error) LineError {
	var ie *InputError
	if errors.As(err, &ie) {
		return LineError{Line: line, Column: column, Problem: ProblemInvalid, Field: ie.Field, Err: ie.Err,
			Message: strings.TrimPrefix(ie.Error(), ErrInvalid.Error()+": ")}
	}
	return LineError{Line: line, Column: column, Problem: ProblemTaken, Message: strings.TrimPrefix(err.Error(), ErrExists.Error()+": ")}
}

func capErrors(errs []LineError) *ImportError {
	if len(errs) > MaxImportErrors {
		return &ImportError{Lines: errs[:MaxImportErrors], More: len(errs) - MaxImportErrors}
	}
	return &ImportError{Lines: errs}
}

func (s *Store) parseCSV(data []byte) ([]importRow, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	first, _, _ := bytes.Cut(data, []byte("\n"))
	sep := ','
	if bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
		sep = ';'
	}
	cr := csv.NewReader(bufio.NewReader(bytes.NewReader(data)))
	cr.Comma = sep
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, &ImportError{Lines: []LineError{{Line: 1, Problem: ProblemNoHeader, Message: "no header line: " + err.Error()}}}
	}
	cols := make(map[string]int)
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		for col, names := range importColumns {
			for _, n := range names {
				if h == n {
					cols[col] = i
				}
			}
		}
	}
	var errs []LineError
	for _, req := range []string{"name", "id"} {
		if _, ok := cols[req]; !ok {
			errs = append(errs, LineError{Line: 1, Column: importColumns[req][0], Problem: ProblemMissingColumn, Message: fmt.Sprintf("missing column %q (one of: %s)",
				importColumns[req][0], strings.Join(importColumns[req], ", "))})
		}
	}
	if len(errs) > 0 {
		return nil, &ImportError{Lines: errs}
	}
	field := func(rec []string, col string) string {
		i, ok := cols[col]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	now := s.now()
	var rows []importRow
	seen := make(map[string]int) // canonical id -> line
	seenCard := make(map[string]int)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			errs = append(errs, LineError{Line: line, Problem: ProblemUnreadable, Message: "unreadable line: " + err.Error()})
			if len(errs) > MaxImportErrors {
				break
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rows) >= MaxImportRows {
			errs = append(errs, LineError{Line: line, Problem: ProblemTooMany, Message: fmt.Sprintf("more than %d people in one file", MaxImportRows)})
			break
		}
		row := importRow{line: line, person: NewPerson{Name: field(rec, "name"), IDNumber: field(rec, "id"), Country: field(rec, "country")}}
		if row.person.Name == "" {
			errs = append(errs, LineError{Line: line, Column: "namn", Problem: ProblemInvalid, Field: FieldPersonName, Message: "empty"})
		}
		ident, err := ParseIdentity(row.person.IDNumber, row.person.Country, now)
		if err != nil {
			errs = append(errs, LineError{Line: line, Column: "personnummer", Problem: ProblemInvalid, Field: FieldIdentity, Err: err, Message: err.Error()})
		} else if prev, dup := seen[ident.canonical]; dup {
			errs = append(errs, LineError{Line: line, Column: "personnummer", Problem: ProblemRepeated, Prev: prev, Message: fmt.Sprintf("%s also on line %d", ident.masked, prev)})
		} else {
			seen[ident.canonical] = line
		}
		if card := field(rec, "card"); card != "" {
			num, err := idnum.ParseCardNumber(card)
			if err != nil {
				errs = append(errs, LineError{Line: line, Column: "kortnummer", Problem: ProblemInvalid, Field: FieldCardNumber, Err: err, Message: err.Error()})
			} else if prev, dup := seenCard[num.String()]; dup {
				errs = append(errs, LineError{Line: line, Column: "kortnummer", Problem: ProblemRepeated, Prev: prev, Message: fmt.Sprintf("%s also on line %d", num, prev)})
			} else {
				seenCard[num.String()] = line
			}
			nc := &NewCard{CardNumber: card}
			if chip := field(rec, "chip"); chip != "" {
				if _, err := idnum.ParseChipUID(chip); err != nil {
					errs = append(errs, LineError{Line: line, Column: "chip", Problem: ProblemInvalid, Field: FieldChipUID, Err: err, Message: err.Error()})
				}
				nc.ChipUIDs = []string{chip}
			}
			if v := field(rec, "valid_until"); v != "" {
				d, err := time.Parse("2006-01-02", v)
				if err != nil {
					errs = append(errs, LineError{Line: line, Column: "giltig till", Problem: ProblemInvalid, Field: FieldValidUntil, Message: "want a date like 2027-06-30"})
				}
				nc.ValidUntil = d
			}
			row.card = nc
		}
		rows = append(rows, row)
		if len(errs) > MaxImportErrors {
			break
		}
	}
	if len(errs) > 0 {
		return nil, capErrors(errs)
	}
	if len(rows) == 0 {
		return nil, &ImportError{Lines: []LineError{{Line: 2, Problem: ProblemNoPeople, Message: "no people in the file"}}}
	}
	return rows, nil
}
