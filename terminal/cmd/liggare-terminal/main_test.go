package main

import "testing"

func TestDefaultCardsPath(t *testing.T) {
	for _, tc := range []struct{ outbox, want string }{
		{"/var/lib/liggare/outbox.db", "/var/lib/liggare/cards.db"},
		{"/tmp/e2e/K1.outbox", "/tmp/e2e/K1.cards.db"},
		{"/tmp/e2e/K2.outbox", "/tmp/e2e/K2.cards.db"},
		{"outbox", "cards.db"},
		{"cards.db", "cards.cards.db"},
	} {
		if got := defaultCardsPath(tc.outbox); got != tc.want {
			t.Errorf("defaultCardsPath(%q) = %q, want %q", tc.outbox, got, tc.want)
		}
	}
}
