package osdp

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// cardData extracts what identifies a card from an osdp_RAW or osdp_FMT
// reply: the bits of a RAW report are the chip UID (or Wiegand credential);
// the text of an FMT report is a card number when it looks like one (an
// ID06 number, two letters and ten digits, or a decimal number), a UID when
// it is hexadecimal, and refused otherwise.
func cardData(f Frame) (uid []byte, number string, err error) {
	switch f.Code {
	case ReplyRAW:
		r, err := ParseRAW(f.Data)
		if err != nil {
			return nil, "", err
		}
		return r.Data, "", nil
	case ReplyFMT:
		c, err := ParseFMT(f.Data)
		if err != nil {
			return nil, "", err
		}
		return cardText(c.Text)
	}
	return nil, "", fmt.Errorf("%w: %s is not card data", ErrData, CodeName(f.Code, true))
}

// cardText classifies the text of an osdp_FMT report.
func cardText(s string) (uid []byte, number string, err error) {
	t := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-':
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(s)))
	switch {
	case isID06Number(t), len(t) >= 4 && len(t) <= 20 && allIn(t, "0123456789"):
		return nil, strings.TrimSpace(s), nil
	case len(t) >= 8 && len(t) <= 20 && len(t)%2 == 0 && allIn(t, "0123456789ABCDEF"):
		uid, _ := hex.DecodeString(t)
		return uid, "", nil
	}
	return nil, "", fmt.Errorf("%w: FMT text of %d characters is neither a card number nor a UID", ErrData, len(s))
}

// isID06Number reports whether t (separators removed) has the shape of an
// ID06 card number: two letters naming the supplier, then ten digits.
func isID06Number(t string) bool {
	return len(t) == 12 && allIn(t[:2], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && allIn(t[2:], "0123456789")
}

func allIn(s, set string) bool {
	for _, r := range s {
		if !strings.ContainsRune(set, r) {
			return false
		}
	}
	return true
}
