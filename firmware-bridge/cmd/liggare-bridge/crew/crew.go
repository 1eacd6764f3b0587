// Package crew is the simulated crew whose cards the reader simulators
// present (liggare-bridge simulate) and the demo registers
// (liggare-demo): worker i carries ID06 card number CardNumber(i) on a
// chip with UID ChipUID(i). Both sides derive them from the worker's index,
// so a simulated reader that yields only a chip UID (OSDP osdp_RAW, PN532,
// line readers) still finds the worker in the registry.
package crew

import (
	"encoding/binary"
	"fmt"
)

// Prefix is the crew's card-supplier letters.
const Prefix = "AB"

// FirstNumber is the serial part of worker 0's card number: the crew's
// cards are AB0000001000, AB0000001001, ...
const FirstNumber = 1000

// UIDLen is the length of a crew chip UID: a 7-byte (double size) ISO/IEC
// 14443-A UID, as on the NXP chips in ID06 cards.
const UIDLen = 7

// nxp is the ISO/IEC 7816-6 manufacturer code of NXP, the first byte of
// every double-size UID its chips carry.
const nxp = 0x04

// CardNumber returns worker i's ID06 card number.
func CardNumber(i int) string { return fmt.Sprintf("%s%010d", Prefix, FirstNumber+i) }

// ChipUID returns worker i's chip UID: NXP's manufacturer byte, three
// bytes that scatter i's bits so the UIDs look like a real crew's, and i's
// low 24 bits (scrambled by a constant) in the last three, so that no two
// workers below 2^24 share a UID.
func ChipUID(i int) []byte {
	var m [8]byte
	binary.BigEndian.PutUint64(m[:], mix(uint64(i)))
	low := uint32(i)&0xFFFFFF ^ 0x5A3C96
	return []byte{nxp, m[0], m[1], m[2], byte(low >> 16), byte(low >> 8), byte(low)}
}

// mix is splitmix64's finaliser: a bijection that scatters the bits of
// consecutive indices.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}
