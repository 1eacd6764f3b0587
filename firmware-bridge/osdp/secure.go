package osdp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Errors of the secure channel.
var (
	// ErrCryptogram: the peer's cryptogram does not match: it holds a
	// different key (or is not who it claims to be).
	ErrCryptogram = errors.New("osdp: secure channel cryptogram mismatch")
	// ErrMAC: a packet's MAC does not verify, or a secure packet has none.
	ErrMAC = errors.New("osdp: secure channel MAC mismatch")
	// ErrDecrypt: encrypted data has a bad length or padding.
	ErrDecrypt = errors.New("osdp: secure channel decryption failed")
)

// Key flags in the security block of osdp_CHLNG and osdp_SCRYPT.
const (
	keyFlagDefault byte = 0x00 // SCBK-D, install mode
	keyFlagSCBK    byte = 0x01 // the PD's own SCBK
)

// sessionKeys holds the three keys derived from the SCBK for one session.
type sessionKeys struct {
	enc, mac1, mac2 Key
}

// deriveSessionKeys derives S-ENC, S-MAC1 and S-MAC2: each is the SCBK
// encrypting (AES-ECB) a block of 0x01, a key-specific byte (0x82, 0x01,
// 0x02), the first six bytes of the CP's random number, and zeros.
func deriveSessionKeys(scbk Key, cpRandom [8]byte) sessionKeys {
	blk, _ := aes.NewCipher(scbk[:]) // a 16-byte key never fails
	derive := func(kind byte) Key {
		var in, out Key
		in[0], in[1] = 0x01, kind
		copy(in[2:8], cpRandom[:6])
		blk.Encrypt(out[:], in[:])
		return out
	}
	return sessionKeys{enc: derive(0x82), mac1: derive(0x01), mac2: derive(0x02)}
}

// Session is one secure channel session between a CP and a PD (OSDP v2.2,
// Annex D, secure channel profile SCS AES-128). Both ends derive the same
// session keys from the SCBK and the two random numbers, prove it to each
// other with cryptograms, then chain a MAC through every packet: a
// command's MAC starts from the last reply's MAC and the other way round,
// so a packet can be neither replayed nor reordered. Command and reply data
// are encrypted with AES-CBC, the IV being the complement of the last MAC
// from the other side. The CP and the PD simulator both use it; command
// tells which side a packet is from.
//
// A Session is not safe for concurrent use.
type Session struct {
	keys               sessionKeys
	enc, mac1, mac2    cipher.Block
	cpRandom, pdRandom [8]byte
	// cmac and rmac are the full 16-byte MACs of the last command and the
	// last reply; packets carry their first 4 bytes.
	cmac, rmac [16]byte
}

// NewSession derives the session keys from scbk and the CP's and the PD's
// random numbers (RND.A in osdp_CHLNG, RND.B in osdp_CCRYPT).
func NewSession(scbk Key, cpRandom, pdRandom [8]byte) *Session {
	s := &Session{keys: deriveSessionKeys(scbk, cpRandom), cpRandom: cpRandom, pdRandom: pdRandom}
	s.enc, _ = aes.NewCipher(s.keys.enc[:])
	s.mac1, _ = aes.NewCipher(s.keys.mac1[:])
	s.mac2, _ = aes.NewCipher(s.keys.mac2[:])
	return s
}

// ClientCryptogram is the PD's proof (in osdp_CCRYPT): S-ENC encrypting
// RND.A then RND.B.
func (s *Session) ClientCryptogram() []byte {
	return s.cryptogram(s.cpRandom, s.pdRandom)
}

// ServerCryptogram is the CP's proof (in osdp_SCRYPT): S-ENC encrypting
// RND.B then RND.A.
func (s *Session) ServerCryptogram() []byte {
	return s.cryptogram(s.pdRandom, s.cpRandom)
}

func (s *Session) cryptogram(first, second [8]byte) []byte {
	in := append(first[:], second[:]...)
	out := make([]byte, 16)
	s.enc.Encrypt(out, in)
	return out
}

// VerifyClientCryptogram checks the PD's cryptogram in constant time.
func (s *Session) VerifyClientCryptogram(c []byte) error {
	if subtle.ConstantTimeCompare(c, s.ClientCryptogram()) != 1 {
		return fmt.Errorf("%w: client cryptogram", ErrCryptogram)
	}
	return nil
}

// VerifyServerCryptogram checks the CP's cryptogram in constant time.
func (s *Session) VerifyServerCryptogram(c []byte) error {
	if subtle.ConstantTimeCompare(c, s.ServerCryptogram()) != 1 {
		return fmt.Errorf("%w: server cryptogram", ErrCryptogram)
	}
	return nil
}

// InitialRMAC is R-MAC-I, the MAC chain's start that the PD sends in
// osdp_RMAC_I: the server cryptogram encrypted with S-MAC1, then S-MAC2.
func (s *Session) InitialRMAC() []byte {
	out := make([]byte, 16)
	s.mac1.Encrypt(out, s.ServerCryptogram())
	s.mac2.Encrypt(out, out)
	return out
}

// Start begins the MAC chain from R-MAC-I after checking it (constant
// time) against the one this session computes.
func (s *Session) Start(rmacI []byte) error {
	want := s.InitialRMAC()
	if subtle.ConstantTimeCompare(rmacI, want) != 1 {
		return fmt.Errorf("%w: initial R-MAC", ErrCryptogram)
	}
	copy(s.rmac[:], want)
	return nil
}

// mac computes the MAC of msg, a packet from SOM up to its MAC: AES-CBC
// with S-MAC1 over all blocks but the last, the last with S-MAC2, starting
// from the last MAC of the other side; msg is padded with 0x80 and zeros
// unless it fills whole blocks. It returns the full 16-byte MAC without
// recording it.
func (s *Session) mac(msg []byte, command bool) [16]byte {
	iv := s.cmac
	if command {
		iv = s.rmac
	}
	n := len(msg)
	padded := make([]byte, (n+15)/16*16)
	copy(padded, msg)
	if n%16 != 0 {
		padded[n] = 0x80
	}
	x := iv
	for i := 0; i < len(padded); i += 16 {
		subtle.XORBytes(x[:], x[:], padded[i:i+16])
		if i+16 < len(padded) {
			s.mac1.Encrypt(x[:], x[:])
		} else {
			s.mac2.Encrypt(x[:], x[:])
		}
	}
	return x
}

// dataIV is the AES-CBC IV for data from the given side: the complement of
// the last MAC from the other side.
func (s *Session) dataIV(command bool) []byte {
	last := s.cmac
	if command {
		last = s.rmac
	}
	iv := make([]byte, 16)
	for i := range iv {
		iv[i] = ^last[i]
	}
	return iv
}

// encrypt pads data with 0x80 and zeros to whole blocks (always adding the
// 0x80) and encrypts it with S-ENC.
func (s *Session) encrypt(data []byte, command bool) []byte {
	out := make([]byte, (len(data)+1+15)/16*16)
	copy(out, data)
	out[len(data)] = 0x80
	cipher.NewCBCEncrypter(s.enc, s.dataIV(command)).CryptBlocks(out, out)
	return out
}

// decrypt reverses encrypt.
func (s *Session) decrypt(data []byte, command bool) ([]byte, error) {
	if len(data) == 0 || len(data)%16 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrDecrypt, len(data))
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(s.enc, s.dataIV(command)).CryptBlocks(out, data)
	i := len(out) - 1
	for i > 0 && out[i] == 0 {
		i--
	}
	if out[i] != 0x80 {
		return nil, fmt.Errorf("%w: no end-of-message marker", ErrDecrypt)
	}
	return out[:i], nil
}

// Seal encodes f as a secure packet from the given side (command: from the
// CP): data, if any, is encrypted (SCS_17/SCS_18, else SCS_15/SCS_16) and
// the MAC computed, recorded in the chain and appended. f's SCB, Data and
// MAC are replaced. A packet must be sent as sealed: to send it again (a
// retry), send the same bytes.
func (s *Session) Seal(f Frame, command bool) ([]byte, error) {
	typ := SCS15
	if !command {
		typ = SCS16
	}
	if len(f.Data) > 0 {
		typ += 2 // SCS17, SCS18
		f.Data = s.encrypt(f.Data, command)
	}
	f.SCB = []byte{typ}
	f.MAC = make([]byte, macLen)
	b, err := f.Append(nil)
	if err != nil {
		return nil, fmt.Errorf("osdp: seal %s: %w", CodeName(f.Code, !command), err)
	}
	at := f.macOffset()
	mac := s.mac(b[:at], command)
	copy(b[at:], mac[:macLen])
	b = appendCheck(b[:at+macLen], 0, f.Checksum)
	if command {
		s.cmac = mac
	} else {
		s.rmac = mac
	}
	return b, nil
}

// Open verifies a parsed secure packet from the given side and decrypts
// its data in place (f.Data becomes the plain data). The MAC chain moves on
// only when the MAC verifies; any error means the session is over.
func (s *Session) Open(f *Frame, command bool) error {
	want := SCS15
	if !command {
		want = SCS16
	}
	if !hasMAC(f.SCB) || (f.SCB[0] != want && f.SCB[0] != want+2) || len(f.Raw) < f.Len() {
		return fmt.Errorf("%w: %s without a MAC (security block %x)", ErrMAC, CodeName(f.Code, !command), f.SCB)
	}
	at := f.macOffset()
	mac := s.mac(f.Raw[:at], command)
	if subtle.ConstantTimeCompare(mac[:macLen], f.MAC) != 1 {
		return fmt.Errorf("%w: %s", ErrMAC, CodeName(f.Code, !command))
	}
	if f.SCB[0] == want+2 && len(f.Data) > 0 {
		plain, err := s.decrypt(f.Data, command)
		if err != nil {
			return fmt.Errorf("osdp: open %s: %w", CodeName(f.Code, !command), err)
		}
		f.Data = plain
	}
	if command {
		s.cmac = mac
	} else {
		s.rmac = mac
	}
	return nil
}
