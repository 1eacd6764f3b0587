// Package sim simulates a line reader: it speaks the lineproto wire format
// on the master side of a pseudo-terminal (firmware-bridge/ptypair), behind
// a stable symlink that the driver opens as its serial port, like
// /dev/serial/by-id/... for a real reader.
//
// Faults on demand: Noise (random bytes that are never hex, blanks or
// terminators), Truncate (part of a frame, then nothing), GarbageLine (a
// whole frame that is not a UID), Overlong (a frame past
// lineproto.MaxLineLen), silence (just present nothing), Unplug (the
// driver's port fails) and Replug (a new pseudo-terminal behind the same
// path).
package sim
