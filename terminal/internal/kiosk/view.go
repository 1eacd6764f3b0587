package kiosk

import (
	"fmt"
	"time"

	"github.com/liggare/liggare/terminal/internal/agent"
)

// Directions Show accepts, as the terminal's tap journal derives them
// (inspect.Direction).
const (
	DirIn     = "in"
	DirOut    = "out"
	DirRepeat = "repeat"
)

// Kinds of answer, each with its colour, icon and words: never colour alone.
const (
	kindOK      = "ok"      // green, check: counted
	kindNeutral = "neutral" // blue, info: recorded, nothing to judge by or a repeat
	kindRefused = "refused" // red, cross: recorded, but the card is not valid here
	kindError   = "error"   // red, warning: NOT recorded
)

// TapView is what the screen shows for one tap, in Swedish first and
// English second. It is sent to the page as JSON (SSE event "tap").
type TapView struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Icon     string `json:"icon"`
	Title    string `json:"title"`
	TitleEN  string `json:"title_en"`
	Name     string `json:"name"`
	Employer string `json:"employer"`
	Detail   string `json:"detail"`
	DetailEN string `json:"detail_en"`
	Time     string `json:"time"`
	At       string `json:"at"`
	// ShowMillis is how long the page shows it before going back to idle.
	ShowMillis int64 `json:"show_ms"`
}

// StatusView is the link and queue line of the screen (SSE event
// "status").
type StatusView struct {
	Kind     string `json:"kind"` // online, syncing, offline, full
	Icon     string `json:"icon"`
	Text     string `json:"text"`
	TextEN   string `json:"text_en"`
	Queue    uint64 `json:"queue"`
	Online   bool   `json:"online"`
	LastSync string `json:"last_sync"`
}

// englishTexts are the English lines under agent.KioskText's Swedish ones.
var englishTexts = map[string]string{
	agent.AnswerAccepted:      "Welcome",
	agent.AnswerBlockedID06:   "Card blocked by ID06",
	agent.AnswerBlockedSite:   "Card blocked by this site",
	agent.AnswerNotActivated:  "Card not activated",
	agent.AnswerExpired:       "Card has expired",
	agent.AnswerTerminated:    "Card has been terminated",
	agent.AnswerUnknownCard:   "Unknown card – recorded",
	agent.AnswerUnknownStatus: "Card not approved – recorded",
	agent.AnswerRecorded:      "Registered",
	agent.AnswerUnreadable:    "Card could not be read – try again",
	agent.AnswerOutboxFull:    "Could not be recorded – contact the site office",
	agent.AnswerStorageFail:   "Could not be recorded – contact the site office",
}

func englishText(answer string) string {
	if t, ok := englishTexts[answer]; ok {
		return t
	}
	return "Card not approved – recorded"
}

// tapView builds what the screen shows for an observation.
func tapView(o agent.Observation, dir string, loc *time.Location, show time.Duration) TapView {
	fb := o.Feedback
	hm := o.At.In(loc).Format("15:04")
	v := TapView{Seq: fb.Seq, Name: fb.Name, Employer: fb.Employer, Time: hm, At: o.At.Format(time.RFC3339),
		Title: agent.KioskText(fb.Answer), TitleEN: englishText(fb.Answer), ShowMillis: show.Milliseconds()}
	switch {
	case !fb.Recorded:
		v.Kind, v.Icon = kindError, "warning"
		v.Detail, v.DetailEN = "Stämplingen är INTE registrerad.", "The tap was NOT recorded."
	case fb.Answer == agent.AnswerAccepted && dir == DirRepeat:
		v.Kind, v.Icon = kindNeutral, "info"
		v.Title, v.TitleEN = "Redan registrerad", "Already registered"
		v.Detail, v.DetailEN = "Du blippade nyss – det räknas en gång.", "You just tapped – it counts once."
	case fb.Answer == agent.AnswerAccepted && dir == DirOut:
		v.Kind, v.Icon = kindOK, "check"
		v.Title, v.TitleEN = "Hej då", "Goodbye"
		v.Detail, v.DetailEN = "Utcheckad kl. "+hm, "Checked out at "+hm
	case fb.Answer == agent.AnswerAccepted && dir == DirIn:
		v.Kind, v.Icon = kindOK, "check"
		v.Detail, v.DetailEN = "Incheckad kl. "+hm, "Checked in at "+hm
	case fb.Answer == agent.AnswerAccepted:
		v.Kind, v.Icon = kindOK, "check"
		v.Detail, v.DetailEN = "Registrerad kl. "+hm, "Registered at "+hm
	case fb.Answer == agent.AnswerRecorded:
		// No card data on the terminal yet: it can only say the tap counts.
		v.Kind, v.Icon = kindNeutral, "info"
		v.Detail, v.DetailEN = "Stämplingen är sparad kl. "+hm, "The tap is saved at "+hm
	default:
		v.Kind, v.Icon = kindRefused, "cross"
		v.Detail, v.DetailEN = "Stämplingen är sparad kl. "+hm+". Kontakta arbetsledningen.",
			"The tap is saved at "+hm+". Contact the site office."
	}
	return v
}

// statusView builds the status line.
func statusView(online, full bool, queue uint64, lastAck, now time.Time, loc *time.Location) StatusView {
	v := StatusView{Queue: queue, Online: online}
	if !lastAck.IsZero() {
		layout := "15:04"
		if y1, m1, d1 := lastAck.In(loc).Date(); y1 != now.In(loc).Year() || m1 != now.In(loc).Month() || d1 != now.In(loc).Day() {
			layout = "2006-01-02 15:04"
		}
		v.LastSync = lastAck.In(loc).Format(layout)
	}
	switch {
	case full:
		v.Kind, v.Icon = "full", "warning"
		v.Text = "Terminalens minne är fullt – nya stämplingar registreras inte. Kontakta arbetsledningen."
		v.TextEN = "The terminal's storage is full – new taps are not recorded. Contact the site office."
	case online && queue == 0:
		v.Kind, v.Icon = "online", "check"
		v.Text, v.TextEN = "Ansluten – allt är skickat", "Online – everything sent"
	case online:
		v.Kind, v.Icon = "syncing", "sync"
		v.Text = fmt.Sprintf("Ansluten – skickar %d %s", queue, plural(queue, "stämpling", "stämplingar"))
		v.TextEN = fmt.Sprintf("Online – sending %d %s", queue, plural(queue, "tap", "taps"))
	default:
		v.Kind, v.Icon = "offline", "offline"
		since, sinceEN := "Inte synkad sedan start.", "Not synced since start."
		if v.LastSync != "" {
			since, sinceEN = "Senast synkad "+v.LastSync+".", "Last synced "+v.LastSync+"."
		}
		v.Text = fmt.Sprintf("Ingen nätverksanslutning. Stämplingar sparas i terminalen (%d i kö). %s", queue, since)
		v.TextEN = fmt.Sprintf("No network. Taps are stored in the terminal (%d queued). %s", queue, sinceEN)
	}
	return v
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
