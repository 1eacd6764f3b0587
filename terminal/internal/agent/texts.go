package agent

// kioskTexts are the kiosk's words for each answer, in Swedish as workers
// on the sites read them; the wording of the refusals follows the other
// kiosks of the trade, so a worker recognises "Kort spärrat hos ID06" from
// site to site. Every answer of a recorded tap but AnswerAccepted ends the
// same way in spirit: the tap counts, someone will look at it.
var kioskTexts = map[string]string{
	AnswerAccepted:      "Välkommen",
	AnswerBlockedID06:   "Kort spärrat hos ID06",
	AnswerBlockedSite:   "Kort spärrat av arbetsplatsen",
	AnswerNotActivated:  "Kort ej aktiverat",
	AnswerExpired:       "Kortet har gått ut",
	AnswerTerminated:    "Kortet är avslutat",
	AnswerUnknownCard:   "Okänt kort – registrerat",
	AnswerUnknownStatus: "Kort ej godkänt – registrerat",
	AnswerRecorded:      "Registrerad",

	// Not recorded: the worker must know, or be checked in by hand.
	AnswerUnreadable:  "Kortet kunde inte läsas – försök igen",
	AnswerOutboxFull:  "Kunde inte registreras – kontakta arbetsledningen",
	AnswerStorageFail: "Kunde inte registreras – kontakta arbetsledningen",
}

// fallbackText is shown for an answer without a text of its own: a card
// status a newer server introduced. The tap was recorded.
const fallbackText = "Kort ej godkänt – registrerat"

// KioskText returns the Swedish text the kiosk screen shows for an answer.
func KioskText(answer string) string {
	if t, ok := kioskTexts[answer]; ok {
		return t
	}
	return fallbackText
}
