package idnum

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParsePersonNumber(t *testing.T) {
	type want struct {
		canon string
		kind  Kind
		birth string // YYYY-MM-DD
	}
	tests := []struct {
		in   string
		now  time.Time // refNow when zero
		want want
		err  error
	}{
		// Well-known test numbers in every accepted form.
		{in: "811218-9876", want: want{"198112189876", Personnummer, "1981-12-18"}},
		{in: "8112189876", want: want{"198112189876", Personnummer, "1981-12-18"}},
		{in: "198112189876", want: want{"198112189876", Personnummer, "1981-12-18"}},
		{in: "19811218-9876", want: want{"198112189876", Personnummer, "1981-12-18"}},
		{in: " \t811218-9876\r\n", want: want{"198112189876", Personnummer, "1981-12-18"}},
		{in: "19121212-1212", want: want{"191212121212", Personnummer, "1912-12-12"}},
		{in: "121212+1212", want: want{"191212121212", Personnummer, "1912-12-12"}},
		// Without '+' the latest century wins: 2012, not 1912.
		{in: "121212-1212", want: want{"201212121212", Personnummer, "2012-12-12"}},
		{in: "1212121212", want: want{"201212121212", Personnummer, "2012-12-12"}},
		// Samordningsnummer: day + 60.
		{in: "701063-2391", want: want{"197010632391", Samordningsnummer, "1970-10-03"}},
		{in: "19701063-2391", want: want{"197010632391", Samordningsnummer, "1970-10-03"}},
		{in: pnr("700161239", "-"), want: want{"19700161" + withCheck("700161239")[6:], Samordningsnummer, "1970-01-01"}},
		{in: pnr("700191239", "-"), want: want{"19700191" + withCheck("700191239")[6:], Samordningsnummer, "1970-01-31"}},
		// Century inference around the reference date 2026-03-15.
		{in: pnr("260315123", "-"), want: want{"20" + withCheck("260315123"), Personnummer, "2026-03-15"}},
		{in: pnr("260316123", "-"), want: want{"19" + withCheck("260316123"), Personnummer, "1926-03-16"}},
		{in: pnr("260315123", "+"), want: want{"19" + withCheck("260315123"), Personnummer, "1926-03-15"}},
		{in: pnr("260316123", "+"), want: want{"18" + withCheck("260316123"), Personnummer, "1826-03-16"}},
		{in: pnr("990101123", "-"), want: want{"19" + withCheck("990101123"), Personnummer, "1999-01-01"}},
		// Leap years: 2000 and 2024 are, 1900 and 2023 are not.
		{in: pnr("000229123", "-"), want: want{"20" + withCheck("000229123"), Personnummer, "2000-02-29"}},
		{in: "20" + withCheck("000229123"), want: want{"20" + withCheck("000229123"), Personnummer, "2000-02-29"}},
		{in: pnr("240229123", ""), want: want{"20" + withCheck("240229123"), Personnummer, "2024-02-29"}},
		{in: pnr("240289123", "-"), want: want{"20" + withCheck("240289123"), Samordningsnummer, "2024-02-29"}},
		{in: pnr("000229123", "+"), err: ErrDate},
		{in: "19" + withCheck("000229123"), err: ErrDate},
		{in: pnr("230229123", "-"), err: ErrDate},
		{in: pnr("230289123", "-"), err: ErrDate},
		{in: pnr("810431123", "-"), err: ErrDate},
		// The 1800s are accepted in the twelve-digit form, before is not.
		{in: "18" + withCheck("000101123"), want: want{"18" + withCheck("000101123"), Personnummer, "1800-01-01"}},
		{in: "17" + withCheck("991231123"), err: ErrDate},
		{in: "00" + withCheck("000110000"), err: ErrDate},
		// A '+' number from long ago falls before 1800.
		{in: pnr("990101123", "+"), now: time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), err: ErrDate},
		// Future birth dates.
		{in: "20" + withCheck("260316123"), err: ErrDate},
		{in: "2026031" + "6-" + withCheck("260316123")[6:], err: ErrDate},
		{in: "21" + withCheck("000101123"), err: ErrDate},
		// Impossible months and days.
		{in: pnr("811318123", "-"), err: ErrDate},
		{in: pnr("810018123", "-"), err: ErrDate},
		{in: pnr("811200123", "-"), err: ErrDate},
		{in: pnr("811232123", "-"), err: ErrDate},
		{in: pnr("811260123", "-"), err: ErrDate},
		{in: pnr("811292123", "-"), err: ErrDate},
		// Wrong check digit.
		{in: "811218-9875", err: ErrCheckDigit},
		{in: "198112189870", err: ErrCheckDigit},
		{in: "701063-2392", err: ErrCheckDigit},
		{in: "19121212-1213", err: ErrCheckDigit},
		// Wrong shape.
		{in: "", err: ErrFormat},
		{in: "   ", err: ErrFormat},
		{in: "811218 9876", err: ErrFormat},
		{in: "811218/9876", err: ErrFormat},
		{in: "811218--9876", err: ErrFormat},
		{in: "81121-89876", err: ErrFormat},
		{in: "811218-987", err: ErrFormat},
		{in: "811218-98765", err: ErrFormat},
		{in: "19811218+9876", err: ErrFormat},
		{in: "1981-12-18-9876", err: ErrFormat},
		{in: "811218-987X", err: ErrFormat},
		{in: "８１１２１８-９８７６", err: ErrFormat},
		{in: "19811218 9876", err: ErrFormat},
		{in: "1981121898760", err: ErrFormat},
		{in: "-8112189876", err: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = refNow
			}
			p, err := ParsePersonNumber(tt.in, now)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParsePersonNumber(%q) = %v, %v; want error %v", tt.in, p.Masked(), err, tt.err)
				}
				checkErr(t, tt.in, err)
				if !p.IsZero() {
					t.Errorf("ParsePersonNumber(%q) returned %v with an error, want zero value", tt.in, p.Masked())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePersonNumber(%q) = %v, want %s", tt.in, err, tt.want.canon)
			}
			if got := p.String(); got != tt.want.canon {
				t.Errorf("ParsePersonNumber(%q).String() = %s, want %s", tt.in, got, tt.want.canon)
			}
			if got := p.Kind(); got != tt.want.kind {
				t.Errorf("ParsePersonNumber(%q).Kind() = %v, want %v", tt.in, got, tt.want.kind)
			}
			if got := p.BirthDate().Format(time.DateOnly); got != tt.want.birth {
				t.Errorf("ParsePersonNumber(%q).BirthDate() = %s, want %s", tt.in, got, tt.want.birth)
			}
			if got, want := p.Masked(), tt.want.canon[:8]+"-****"; got != want {
				t.Errorf("ParsePersonNumber(%q).Masked() = %s, want %s", tt.in, got, want)
			}
			q, err := ParsePersonNumber(p.String(), now)
			if err != nil || q != p {
				t.Errorf("ParsePersonNumber(%s) = %v, %v; want %v (round trip)", p, q, err, p)
			}
		})
	}
}

func TestPersonNumberErrorIsMasked(t *testing.T) {
	_, err := ParsePersonNumber("811218-9875", refNow)
	if err == nil || !strings.Contains(err.Error(), "19811218-****") || strings.Contains(err.Error(), "9875") {
		t.Errorf("ParsePersonNumber(811218-9875) error = %v, want the masked form 19811218-**** and not the birth number", err)
	}
}

func TestPersonNumberZero(t *testing.T) {
	var p PersonNumber
	if !p.IsZero() || p.String() != "" || p.Masked() != "" || p.Kind() != 0 || !p.BirthDate().IsZero() {
		t.Errorf("zero PersonNumber: IsZero %v, String %q, Masked %q, Kind %v, BirthDate %v", p.IsZero(), p.String(), p.Masked(), p.Kind(), p.BirthDate())
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Personnummer: "personnummer", Samordningsnummer: "samordningsnummer", 0: "Kind(0)", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// TestPersonNumberLogValue checks that slog, which callers will reach for,
// logs the masked form and never the number.
func TestPersonNumberLogValue(t *testing.T) {
	p, err := ParsePersonNumber("811218-9876", refNow)
	if err != nil {
		t.Fatal(err)
	}
	o := OrgNumberOf(p)
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("checked in", "pnr", p, "org", o, slog.Any("pnr_any", p))
		if out := buf.String(); strings.Contains(out, "9876") || !strings.Contains(out, "19811218-****") {
			t.Errorf("log output = %s, want only the masked number", out)
		}
	}
}

// TestSplitDay pins the samordningsnummer rule that a reform may change.
func TestSplitDay(t *testing.T) {
	for field := 0; field <= 99; field++ {
		day, kind, ok := splitDay(field)
		switch {
		case field >= 1 && field <= 31:
			if !ok || kind != Personnummer || day != field {
				t.Errorf("splitDay(%d) = %d, %v, %v; want %d, personnummer", field, day, kind, ok, field)
			}
		case field >= 61 && field <= 91:
			if !ok || kind != Samordningsnummer || day != field-60 {
				t.Errorf("splitDay(%d) = %d, %v, %v; want %d, samordningsnummer", field, day, kind, ok, field-60)
			}
		default:
			if ok {
				t.Errorf("splitDay(%d) = %d, %v, true; want not ok", field, day, kind)
			}
		}
	}
}

func FuzzParsePersonNumber(f *testing.F) {
	for _, s := range []string{
		"811218-9876", "8112189876", "198112189876", "19811218-9876", "121212+1212",
		"701063-2391", "19121212-1212", "000229-0000", "811218-9875", "", "+", "-",
		"18000101-1234", "260315-1234", "991231+9999", "1981121898761",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePersonNumber(s, refNow)
		if err != nil {
			checkErr(t, s, err)
			return
		}
		c := p.String()
		if len(c) != 12 || !allDigits(c) || !luhnValid(c[2:]) {
			t.Fatalf("ParsePersonNumber(%q).String() = %q, want 12 digits with a valid check digit", s, c)
		}
		if p.Kind() != Personnummer && p.Kind() != Samordningsnummer {
			t.Fatalf("ParsePersonNumber(%q).Kind() = %v", s, p.Kind())
		}
		if b := p.BirthDate(); b.Year() < minBirthYear || b.After(refNow) {
			t.Fatalf("ParsePersonNumber(%q).BirthDate() = %v, want 1800 to now", s, b)
		}
		if ten := dropSeparators(strings.TrimSpace(s), "-+"); !strings.HasSuffix(c, ten) {
			t.Fatalf("ParsePersonNumber(%q).String() = %q, does not end in the input's digits", s, c)
		}
		q, err := ParsePersonNumber(c, refNow)
		if err != nil || q != p {
			t.Fatalf("ParsePersonNumber(%q) = %v, %v; want the value it was printed from", c, q.Masked(), err)
		}
	})
}
