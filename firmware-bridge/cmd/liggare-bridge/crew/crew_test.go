package crew

import (
	"encoding/hex"
	"testing"
)

func TestCardNumber(t *testing.T) {
	for i, want := range map[int]string{0: "AB0000001000", 29: "AB0000001029", 123456: "AB0000124456"} {
		if got := CardNumber(i); got != want {
			t.Errorf("CardNumber(%d) = %s, want %s", i, got, want)
		}
	}
}

// TestChipUIDStable pins the UIDs: a demo database seeded by an older build
// must still know the cards a newer simulator presents.
func TestChipUIDStable(t *testing.T) {
	for i, want := range map[int]string{0: "04e220a85a3c96", 1: "04910a2d5a3c97", 29: "04bb7b495a3c8b"} {
		if got := hex.EncodeToString(ChipUID(i)); got != want {
			t.Errorf("ChipUID(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestChipUIDDistinct(t *testing.T) {
	seen := make(map[string]int)
	for i := range 200_000 {
		uid := ChipUID(i)
		if len(uid) != UIDLen || uid[0] != 0x04 {
			t.Fatalf("ChipUID(%d) = %x, want 7 bytes from 04", i, uid)
		}
		if j, dup := seen[string(uid)]; dup {
			t.Fatalf("ChipUID(%d) = ChipUID(%d) = %x", i, j, uid)
		}
		seen[string(uid)] = i
	}
}
