// Package lineproto drives "keyboard-less" USB card readers that present a
// serial port (usually /dev/ttyACM0, CDC-ACM) and print each card's UID as a
// line of hex, such as "04A1B2C3D4E5F6\r\n".
//
// # Wire format
//
// A frame is one line, ended by CR, LF, CR LF, or either (Framing), or
// enclosed in STX (0x02) ... ETX (0x03). Inside it: an optional prefix and
// suffix (stripped when present, e.g. "UID:"), ASCII blanks at either end,
// and the UID as hex digits of either case, either run together
// ("04A1B2C3") or with one separator (space, ':' or '-') after every byte
// ("04:A1:B2:C3"). Some readers print the UID little-endian; Order says
// whether to reverse it. A UID must have one of Format.UIDLengths bytes
// (ISO/IEC 14443-A: 4, 7 or 10) and is neither all zeros nor all ones.
//
// # Garbage
//
// Nothing but a whole, well-formed frame is ever a tap. Lines that are not a
// UID (noise, a reader's banner or error text) are dropped and counted
// (Stats.BadLines). A frame longer than MaxLineLen is discarded up to its
// terminator (Stats.Overlong). A reader prints a line in one burst, so a
// partial line followed by a whole read timeout of silence, or cut off by
// an unplug, is discarded (Stats.Truncated); this also keeps a cut-off line
// from being glued to the next one into a UID that was never presented.
// With STX/ETX framing, bytes between frames are noise (Stats.Noise) and do
// not spoil the next frame; in line framings noise glued to a line spoils
// that line only (no tap, no feedback: the worker taps again). The
// reader.State's ChecksumErrors counts all of these, as line readers have
// no checksum.
//
// # Presentations
//
// Many readers repeat the UID while a card is held. Every good frame is a
// sighting (State.Frames); a reader.HoldOff turns sightings into
// presentations, and the Handler is called once per presentation. The
// hold-off survives unplug and replug, so a card read just before an unplug
// is not read again just after it.
//
// # Feedback
//
// Line readers usually have no LED or beeper the host can drive: by default
// the Feedback the Handler returns is accepted and ignored (the kiosk screen
// shows it). Readers that take commands get a configured byte string per
// outcome (Config.Feedback), written right after the Handler returns.
//
// # Supervision
//
// A line reader is silent when idle, so there is nothing to poll: the
// reader is Online while its port is open. The port is owned by a
// serialport.Link, which reopens it with backoff after an unplug.
//
// ParseConfig reads the terminal's --reader value, e.g.
// "line:/dev/ttyACM0?baud=9600&frame=crlf&order=reverse". Package
// lineproto/sim is a reader simulator for tests and demos.
package lineproto
