package enroll

import "testing"

// The terminal signs these exact bytes (terminal/internal/enroll has the
// same test): a change on one side only breaks enrollment.
func TestSignedMessagesGolden(t *testing.T) {
	pub := make([]byte, 32)
	for i := range pub {
		pub[i] = byte(i)
	}
	nonce := []byte{0xde, 0xad, 0xbe, 0xef}
	for _, tc := range []struct{ got, want string }{
		{string(EnrollMessage("ABCDE23456", "gate-1", pub)),
			"liggare-enroll-v1\ncode=ABCDE23456\nterminal_id=gate-1\npublic_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"},
		{string(RotateMessage("gate-1", "gate-1.secret", nonce)),
			"liggare-rotate-v1\nterminal_id=gate-1\ncredential_sha256=816b460c0a5c4b6485a467cb702243dac7a3f928c3faafb907742bf37fb5adb7\nnonce=deadbeef\n"},
		{string(ConfirmMessage("gate-1", "gate-1.secret", nonce)),
			"liggare-confirm-v1\nterminal_id=gate-1\ncredential_sha256=816b460c0a5c4b6485a467cb702243dac7a3f928c3faafb907742bf37fb5adb7\nnonce=deadbeef\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("signed message = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"abcde-23456", "ABCDE23456", true},
		{" ABCDE 23456 ", "ABCDE23456", true},
		{"ABCDE2345", "", false},
		{"ABCDE234560", "", false},
		{"ABCDE-2345O", "", false}, // O is not in the alphabet
		{"ABCDE-23451", "", false},
	} {
		got, err := NormalizeCode(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeCode(%q) = %q, %v; want %q (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
