package idnum

import (
	"errors"
	"testing"
)

func TestParseOrgNumber(t *testing.T) {
	tests := []struct {
		in       string
		canon    string
		personal bool
		masked   string
		err      error
	}{
		// Skatteverket's own number, and a well-known aktiebolag.
		{in: "202100-5489", canon: "202100-5489", masked: "202100-5489"},
		{in: "556016-0680", canon: "556016-0680", masked: "556016-0680"},
		{in: "5560160680", canon: "556016-0680", masked: "556016-0680"},
		{in: "165560160680", canon: "556016-0680", masked: "556016-0680"},
		{in: "16556016-0680", canon: "556016-0680", masked: "556016-0680"},
		{in: "  556016-0680\n", canon: "556016-0680", masked: "556016-0680"},
		// Sole traders use their personnummer or samordningsnummer.
		{in: "811218-9876", canon: "198112189876", personal: true, masked: "19811218-****"},
		{in: "8112189876", canon: "198112189876", personal: true, masked: "19811218-****"},
		{in: "198112189876", canon: "198112189876", personal: true, masked: "19811218-****"},
		{in: "19121212-1212", canon: "191212121212", personal: true, masked: "19121212-****"},
		{in: "121212+1212", canon: "191212121212", personal: true, masked: "19121212-****"},
		{in: "701063-2391", canon: "197010632391", personal: true, masked: "19701063-****"},
		// Errors.
		{in: "556016-0681", err: ErrCheckDigit},
		{in: "165560160681", err: ErrCheckDigit},
		{in: "556016+0680", err: ErrFormat},
		{in: "55601-60680", err: ErrFormat},
		{in: "556016-068", err: ErrFormat},
		{in: "556016-06800", err: ErrFormat},
		{in: "168112189876", err: ErrFormat},
		{in: "16-5560160680", err: ErrFormat},
		{in: "556016-068O", err: ErrFormat},
		{in: "SE556016068001", err: ErrFormat},
		{in: "", err: ErrFormat},
		{in: "abc", err: ErrFormat},
		{in: "811218-9875", err: ErrCheckDigit},
		{in: "811318-9876", err: ErrDate},
		{in: "20" + withCheck("260316123"), err: ErrDate},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			o, err := ParseOrgNumber(tt.in, refNow)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseOrgNumber(%q) = %v, %v; want error %v", tt.in, o.Masked(), err, tt.err)
				}
				checkErr(t, tt.in, err)
				if !o.IsZero() {
					t.Errorf("ParseOrgNumber(%q) returned %v with an error, want zero value", tt.in, o.Masked())
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOrgNumber(%q) = %v, want %s", tt.in, err, tt.canon)
			}
			if o.String() != tt.canon || o.IsPersonal() != tt.personal || o.Masked() != tt.masked || o.IsZero() {
				t.Errorf("ParseOrgNumber(%q) = %s (personal %v, masked %s), want %s (personal %v, masked %s)",
					tt.in, o, o.IsPersonal(), o.Masked(), tt.canon, tt.personal, tt.masked)
			}
			p, ok := o.Person()
			if ok != tt.personal || (ok && p.String() != tt.canon) || (!ok && !p.IsZero()) {
				t.Errorf("ParseOrgNumber(%q).Person() = %v, %v", tt.in, p.Masked(), ok)
			}
			if ok && OrgNumberOf(p) != o {
				t.Errorf("OrgNumberOf(%v) = %v, want %v", p.Masked(), OrgNumberOf(p).Masked(), o.Masked())
			}
			q, err := ParseOrgNumber(o.String(), refNow)
			if err != nil || q != o {
				t.Errorf("ParseOrgNumber(%s) = %v, %v; want %v (round trip)", o, q.Masked(), err, o.Masked())
			}
		})
	}
}

func TestOrgNumberZero(t *testing.T) {
	var o OrgNumber
	if p, ok := o.Person(); !o.IsZero() || o.IsPersonal() || ok || !p.IsZero() || o.String() != "" || o.Masked() != "" {
		t.Errorf("zero OrgNumber: IsZero %v, IsPersonal %v, String %q, Masked %q", o.IsZero(), o.IsPersonal(), o.String(), o.Masked())
	}
}

func FuzzParseOrgNumber(f *testing.F) {
	for _, s := range []string{
		"556016-0680", "5560160680", "165560160680", "16556016-0680", "202100-5489",
		"811218-9876", "198112189876", "701063-2391", "121212+1212", "556016+0680", "168112189876", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrgNumber(s, refNow)
		if err != nil {
			checkErr(t, s, err)
			return
		}
		if o.IsZero() {
			t.Fatalf("ParseOrgNumber(%q) = zero value, nil", s)
		}
		c := o.String()
		if !o.IsPersonal() {
			ten := c[:6] + c[7:]
			if len(c) != 11 || c[6] != '-' || !allDigits(ten) || ten[2] < '2' || !luhnValid(ten) {
				t.Fatalf("ParseOrgNumber(%q).String() = %q, want NNNNNN-NNNC with a valid check digit", s, c)
			}
		}
		q, err := ParseOrgNumber(c, refNow)
		if err != nil || q != o {
			t.Fatalf("ParseOrgNumber(%q) = %v, %v; want the value it was printed from", c, q.Masked(), err)
		}
	})
}
