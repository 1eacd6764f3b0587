package osdp

import "github.com/liggare/liggare/firmware-bridge/reader"

// Signals returns the osdp_LED and osdp_BUZ records that show fb on a
// reader: green and a short beep for Accepted, amber and a short beep for
// RecordedOffline, red and a long beep for Refused, flashing red and three
// beeps for NotRecorded (and for an outcome it does not know, so that a
// worker is never told "fine" by mistake). The colour is temporary: after
// its timer the reader returns to its own idle pattern.
func Signals(fb reader.Feedback) (LED, Buzzer) {
	steady := func(c Color, tenths byte) LED {
		return LED{
			Temporary: LEDState{Control: LEDTempSet, OnTime: tenths, OnColor: c, OffColor: c},
			Timer:     uint16(tenths),
		}
	}
	beep := func(on, off, count byte) Buzzer {
		return Buzzer{Tone: ToneDefault, OnTime: on, OffTime: off, Count: count}
	}
	switch fb.Outcome {
	case reader.Accepted:
		return steady(Green, 15), beep(1, 0, 1)
	case reader.RecordedOffline:
		return steady(Amber, 15), beep(1, 0, 1)
	case reader.Refused:
		return steady(Red, 20), beep(8, 0, 1)
	default: // reader.NotRecorded and anything unknown
		return LED{
			Temporary: LEDState{Control: LEDTempSet, OnTime: 2, OffTime: 2, OnColor: Red, OffColor: Black},
			Timer:     24,
		}, beep(2, 2, 3)
	}
}
