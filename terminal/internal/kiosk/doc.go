// Package kiosk is the kiosk's screen: a page the terminal serves on a
// loopback port (--kiosk-listen 127.0.0.1:7080) for a browser in full-screen
// kiosk mode on the same machine.
//
// A worker glances at it after tapping and must see at once whether the tap
// counted: green with a check mark, "Välkommen" and "Incheckad kl. 07:02"
// (or "Hej då", "Utcheckad"), the holder's name and company from the card
// cache; red with a cross and the reason when the card is refused ("Kort
// spärrat hos ID06": the tap is still recorded, invariant 9), red with a
// warning when the tap could not be recorded at all. Every state has an
// icon and words, never colour alone (refusals are also striped), Swedish
// first and English under it. The Swedish words are agent.KioskText's, so
// the screen and the reader's own feedback never disagree.
//
// A status line says whether the terminal reaches the server, how many taps
// wait in the outbox and when it last synced; offline it turns amber and
// says that taps are stored in the terminal. If the agent itself stops, the
// page (which then gets no events) says so in red.
//
// The agent's Observe hook calls Show after every Record; Show never
// blocks the reader. The page gets "tap" and "status" events over
// server-sent events (GET /events), the current state first, so a page
// reloaded mid-answer shows it. Everything (HTML, CSS, a small script, SVG
// icons) is embedded in the binary and nothing comes from outside: no web
// fonts, no CDN, so the screen works with no network. The listener accepts
// loopback addresses only, and requests whose Host is not loopback (DNS
// rebinding) are refused. The inspection pages (package inspect) are
// mounted at /inspect/ when configured.
package kiosk
