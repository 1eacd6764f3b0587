package osdp

import "fmt"

// Command codes a CP sends (OSDP v2.2, section 6). Only the ones this package
// builds or understands are listed.
const (
	CmdPOLL   byte = 0x60 // osdp_POLL: anything to report?
	CmdID     byte = 0x61 // osdp_ID: identify yourself
	CmdCAP    byte = 0x62 // osdp_CAP: list your capabilities
	CmdLSTAT  byte = 0x64 // osdp_LSTAT: local (tamper, power) status
	CmdISTAT  byte = 0x65 // osdp_ISTAT: input status
	CmdOSTAT  byte = 0x66 // osdp_OSTAT: output status
	CmdRSTAT  byte = 0x67 // osdp_RSTAT: reader tamper status
	CmdOUT    byte = 0x68 // osdp_OUT: output control
	CmdLED    byte = 0x69 // osdp_LED: reader LED control
	CmdBUZ    byte = 0x6A // osdp_BUZ: reader buzzer control
	CmdTEXT   byte = 0x6B // osdp_TEXT: reader text output
	CmdCOMSET byte = 0x6E // osdp_COMSET: set address and baud rate
	CmdKEYSET byte = 0x75 // osdp_KEYSET: set the secure channel base key
	CmdCHLNG  byte = 0x76 // osdp_CHLNG: secure channel challenge
	CmdSCRYPT byte = 0x77 // osdp_SCRYPT: server cryptogram
	CmdMFG    byte = 0x80 // osdp_MFG: manufacturer specific
)

// Reply codes a PD sends.
const (
	ReplyACK    byte = 0x40 // osdp_ACK: done, nothing to report
	ReplyNAK    byte = 0x41 // osdp_NAK: refused, with a reason
	ReplyPDID   byte = 0x45 // osdp_PDID: identification
	ReplyPDCAP  byte = 0x46 // osdp_PDCAP: capabilities
	ReplyLSTATR byte = 0x48 // osdp_LSTATR: local status report
	ReplyISTATR byte = 0x49 // osdp_ISTATR: input status report
	ReplyOSTATR byte = 0x4A // osdp_OSTATR: output status report
	ReplyRSTATR byte = 0x4B // osdp_RSTATR: reader tamper status report
	ReplyRAW    byte = 0x50 // osdp_RAW: card data, raw bits
	ReplyFMT    byte = 0x51 // osdp_FMT: card data, formatted ASCII
	ReplyKEYPAD byte = 0x53 // osdp_KEYPAD: keys pressed
	ReplyCOM    byte = 0x54 // osdp_COM: communication settings
	ReplyCCRYPT byte = 0x76 // osdp_CCRYPT: client cryptogram
	ReplyRMACI  byte = 0x78 // osdp_RMAC_I: initial reply MAC
	ReplyBUSY   byte = 0x79 // osdp_BUSY: try again
	ReplyMFGREP byte = 0x90 // osdp_MFGREP: manufacturer specific
)

// CodeName names a command (reply false) or reply (reply true) code for
// logs: "osdp_POLL", or "osdp_0x7f" for one this package does not know.
// CHLNG and CCRYPT share 0x76, which is why the direction is needed.
func CodeName(code byte, reply bool) string {
	if n := codeName(code, reply); n != "" {
		return "osdp_" + n
	}
	return fmt.Sprintf("osdp_%#02x", code)
}

func codeName(code byte, reply bool) string {
	if reply {
		switch code {
		case ReplyACK:
			return "ACK"
		case ReplyNAK:
			return "NAK"
		case ReplyPDID:
			return "PDID"
		case ReplyPDCAP:
			return "PDCAP"
		case ReplyLSTATR:
			return "LSTATR"
		case ReplyISTATR:
			return "ISTATR"
		case ReplyOSTATR:
			return "OSTATR"
		case ReplyRSTATR:
			return "RSTATR"
		case ReplyRAW:
			return "RAW"
		case ReplyFMT:
			return "FMT"
		case ReplyKEYPAD:
			return "KEYPAD"
		case ReplyCOM:
			return "COM"
		case ReplyCCRYPT:
			return "CCRYPT"
		case ReplyRMACI:
			return "RMAC_I"
		case ReplyBUSY:
			return "BUSY"
		case ReplyMFGREP:
			return "MFGREP"
		}
		return ""
	}
	switch code {
	case CmdPOLL:
		return "POLL"
	case CmdID:
		return "ID"
	case CmdCAP:
		return "CAP"
	case CmdLSTAT:
		return "LSTAT"
	case CmdISTAT:
		return "ISTAT"
	case CmdOSTAT:
		return "OSTAT"
	case CmdRSTAT:
		return "RSTAT"
	case CmdOUT:
		return "OUT"
	case CmdLED:
		return "LED"
	case CmdBUZ:
		return "BUZ"
	case CmdTEXT:
		return "TEXT"
	case CmdCOMSET:
		return "COMSET"
	case CmdKEYSET:
		return "KEYSET"
	case CmdCHLNG:
		return "CHLNG"
	case CmdSCRYPT:
		return "SCRYPT"
	case CmdMFG:
		return "MFG"
	}
	return ""
}

// NAKReason is the error code an osdp_NAK carries.
type NAKReason byte

// NAK reasons (OSDP v2.2, osdp_NAK).
const (
	NAKNone          NAKReason = 0x00 // no error
	NAKCheck         NAKReason = 0x01 // message check character(s) error
	NAKLength        NAKReason = 0x02 // command length error
	NAKUnknownCmd    NAKReason = 0x03 // unknown command code
	NAKSequence      NAKReason = 0x04 // unexpected sequence number
	NAKSecurityBlock NAKReason = 0x05 // security block not supported / conditions not met
	NAKEncryption    NAKReason = 0x06 // encrypted communication required
	NAKBioType       NAKReason = 0x07 // biometric type not supported
	NAKBioFormat     NAKReason = 0x08 // biometric format not supported
	NAKRecord        NAKReason = 0x09 // unable to process command record
)

// String describes the reason in words.
func (r NAKReason) String() string {
	switch r {
	case NAKNone:
		return "no error"
	case NAKCheck:
		return "check character error"
	case NAKLength:
		return "command length error"
	case NAKUnknownCmd:
		return "unknown command"
	case NAKSequence:
		return "unexpected sequence number"
	case NAKSecurityBlock:
		return "security conditions not met"
	case NAKEncryption:
		return "encrypted communication required"
	case NAKBioType:
		return "biometric type not supported"
	case NAKBioFormat:
		return "biometric format not supported"
	case NAKRecord:
		return "unable to process command record"
	}
	return fmt.Sprintf("NAK reason %#02x", byte(r))
}
