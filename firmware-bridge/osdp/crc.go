package osdp

// crcInit is the CRC-16 initial value OSDP prescribes (the CRC-16/AUG-CCITT
// variant: polynomial 0x1021, not reflected, no final XOR).
const crcInit = 0x1D0F

// CRC16 returns the OSDP CRC-16 of b: polynomial 0x1021, initial value
// 0x1D0F, MSB first, bit by bit (packets are short). A packet carries it least significant byte first.
func CRC16(b []byte) uint16 {
	crc := uint16(crcInit)
	for _, x := range b {
		crc ^= uint16(x) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Checksum returns the OSDP 8-bit checksum of b: the two's complement of the
// sum of its bytes, so that the bytes plus the checksum sum to zero.
func Checksum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return -s
}
