package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// lang is a language of the UI.
type lang string

// The languages: Swedish first, English second.
const (
	langSV lang = "sv"
	langEN lang = "en"
)

// chooseLang picks the request's language: ?lang= (remembered in a
// cookie), the cookie, Accept-Language, else Swedish.
func (s *Server) chooseLang(w http.ResponseWriter, r *http.Request) lang {
	if l, ok := parseLang(r.URL.Query().Get("lang")); ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := parseLang(c.Value); ok {
			return l
		}
	}
	return fromAcceptLanguage(r.Header.Get("Accept-Language"))
}

func parseLang(v string) (lang, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "sv":
		return langSV, true
	case "en":
		return langEN, true
	}
	return "", false
}

// fromAcceptLanguage picks Swedish or English by the header's weights;
// Swedish when neither is named (Norwegian and Danish readers are better
// served by Swedish than English, and the product is Swedish).
func fromAcceptLanguage(h string) lang {
	type choice struct {
		l lang
		q float64
	}
	var cs []choice
	for i, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		q -= float64(i) * 1e-6 // earlier wins a tie
		switch primary {
		case "sv", "nb", "nn", "no", "da":
			cs = append(cs, choice{langSV, q})
		case "en":
			cs = append(cs, choice{langEN, q})
		}
	}
	if len(cs) == 0 {
		return langSV
	}
	best := slices.MaxFunc(cs, func(a, b choice) int {
		switch {
		case a.q < b.q:
			return -1
		case a.q > b.q:
			return 1
		}
		return 0
	})
	if best.q <= 0 {
		return langSV
	}
	return best.l
}

// translate looks key up in the catalogue; arguments fill its verbs. A
// missing key shows as itself (the catalogue test keeps that from
// shipping).
func translate(l lang, key string, args ...any) string {
	m, ok := catalogue[key]
	if !ok {
		return key
	}
	s := m.sv
	if l == langEN {
		s = m.en
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

var (
	weekdaysSV = [...]string{"söndag", "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag"}
	monthsSV   = [...]string{"januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
		"oktober", "november", "december"}
)

// formatDay writes a date in words: "måndag 2 mars 2026", "Monday 2 March
// 2026".
func formatDay(l lang, t time.Time) string {
	if l == langEN {
		return t.Format("Monday 2 January 2006")
	}
	return fmt.Sprintf("%s %d %s %d", weekdaysSV[t.Weekday()], t.Day(), monthsSV[t.Month()-1], t.Year())
}

// msg is one string in both languages.
type msg struct{ sv, en string }

// catalogue holds every string of the UI. Keys are grouped by page.
var catalogue = map[string]msg{
	// Navigation and layout.
	"nav.skip":       {"Hoppa till innehållet", "Skip to content"},
	"nav.label":      {"Huvudmeny", "Main menu"},
	"nav.sites":      {"Arbetsplatser", "Sites"},
	"nav.fleet":      {"Terminaler", "Terminals"},
	"nav.inspector":  {"Skatteverket (kontrollbesök)", "Tax Agency (inspection)"},
	"nav.logout":     {"Logga ut", "Log out"},
	"nav.other_lang": {"English", "Svenska"},

	// Errors.
	"error.title":       {"Något gick fel", "Something went wrong"},
	"error.home":        {"Till startsidan", "To the start page"},
	"error.not_found":   {"Sidan finns inte, eller så har du inte tillgång till den.", "The page does not exist, or you have no access to it."},
	"error.forbidden":   {"Din roll ger inte tillgång till det här.", "Your role does not give access to this."},
	"error.csrf":        {"Formuläret kunde inte kontrolleras. Ladda om sidan och försök igen.", "The form could not be verified. Reload the page and try again."},
	"error.bad_request": {"Felaktig begäran.", "Bad request."},
	"error.too_large":   {"Filen eller formuläret är för stort.", "The file or form is too large."},
	"error.internal":    {"Ett internt fel uppstod. Försök igen om en stund.", "An internal error occurred. Try again in a while."},

	// Time.
	"time.today":     {"i dag", "today"},
	"time.never":     {"aldrig", "never"},
	"time.just_now":  {"nyss", "just now"},
	"time.min_ago":   {"för %d min sedan", "%d min ago"},
	"time.hours_ago": {"för %d h sedan", "%d h ago"},
	"time.days_ago":  {"för %d dagar sedan", "%d days ago"},

	// Logging in.
	"login.title":          {"Logga in", "Log in"},
	"login.email":          {"E-postadress", "E-mail address"},
	"login.password":       {"Lösenord", "Password"},
	"login.submit":         {"Logga in", "Log in"},
	"login.bad":            {"Fel e-postadress eller lösenord.", "Wrong e-mail address or password."},
	"login.throttled":      {"För många försök. Vänta %d min och försök igen.", "Too many attempts. Wait %d min and try again."},
	"login.expired":        {"Du har loggats ut eftersom sessionen gick ut. Logga in igen.", "You were logged out because the session ended. Log in again."},
	"login.logged_out":     {"Du är utloggad.", "You are logged out."},
	"login.start_again":    {"Inloggningen tog för lång tid. Börja om med lösenordet.", "The login took too long. Start again with the password."},
	"login.inspector_hint": {"Från Skatteverket?", "From the Tax Agency?"},
	"login.inspector_link": {"Ange kod för kontrollbesök", "Enter an inspection code"},

	"totp.title":         {"Tvåstegsverifiering", "Two-step verification"},
	"totp.intro":         {"Ange koden från din autentiseringsapp.", "Enter the code from your authenticator app."},
	"totp.code":          {"Kod", "Code"},
	"totp.recovery_hint": {"Har du inte telefonen? Ange en av dina reservkoder i stället.", "No phone at hand? Enter one of your recovery codes instead."},
	"totp.submit":        {"Verifiera", "Verify"},
	"totp.bad":           {"Fel kod. Kontrollera att telefonens klocka går rätt.", "Wrong code. Check that your phone's clock is right."},

	"password.title":    {"Välj ett nytt lösenord", "Choose a new password"},
	"password.intro":    {"Lösenordet du fick är tillfälligt. Välj ett eget innan du fortsätter.", "The password you were given is temporary. Choose your own before you go on."},
	"password.new":      {"Nytt lösenord", "New password"},
	"password.again":    {"Upprepa lösenordet", "Repeat the password"},
	"password.rules":    {"Minst 12 tecken. En mening med några ord är lätt att minnas och svår att gissa.", "At least 12 characters. A sentence of a few words is easy to remember and hard to guess."},
	"password.submit":   {"Spara lösenordet", "Save the password"},
	"password.mismatch": {"Lösenorden är inte lika.", "The passwords differ."},
	"password.weak":     {"Lösenordet är för kort eller för vanligt. Välj ett annat.", "The password is too short or too common. Choose another."},

	"enrol.title":       {"Slå på tvåstegsverifiering", "Turn on two-step verification"},
	"enrol.intro":       {"Liggare kräver tvåstegsverifiering. Du behöver en autentiseringsapp i telefonen, till exempel Microsoft Authenticator, Google Authenticator eller FreeOTP.", "Liggare requires two-step verification. You need an authenticator app on your phone, such as Microsoft Authenticator, Google Authenticator or FreeOTP."},
	"enrol.begin":       {"Börja", "Start"},
	"enrol.step_app":    {"Öppna autentiseringsappen och välj att lägga till ett konto.", "Open the authenticator app and choose to add an account."},
	"enrol.step_add":    {"Tryck på länken i telefonen, eller skriv in nyckeln för hand:", "Tap the link on your phone, or type the key by hand:"},
	"enrol.step_code":   {"Skriv in den sexsiffriga kod som appen visar.", "Enter the six-digit code the app shows."},
	"enrol.secret":      {"Nyckel", "Key"},
	"enrol.uri":         {"Länk", "Link"},
	"enrol.confirm":     {"Slå på", "Turn on"},
	"enrol.not_begun":   {"Börja om: ingen nyckel är skapad.", "Start again: no key has been made."},
	"enrol.done":        {"Tvåstegsverifiering är påslagen.", "Two-step verification is on."},
	"enrol.codes_intro": {"Spara reservkoderna på ett säkert ställe. Varje kod fungerar en gång om du inte har telefonen. De visas bara nu.", "Keep the recovery codes somewhere safe. Each works once if you do not have your phone. They are shown only now."},
	"enrol.continue":    {"Fortsätt", "Continue"},

	"redeem.title":      {"Kontrollbesök", "Inspection"},
	"redeem.intro":      {"Ange koden som platsens ansvarige gav dig, eller öppna länken du fick.", "Enter the code the site's manager gave you, or open the link you were given."},
	"redeem.code":       {"Kod", "Code"},
	"redeem.link_found": {"Länken är läst. Tryck på knappen för att öppna liggaren.", "The link is read. Press the button to open the ledger."},
	"redeem.submit":     {"Öppna personalliggaren", "Open the staff ledger"},
	"redeem.invalid":    {"Koden eller länken gäller inte (okänd, utgången eller återkallad).", "The code or link is not valid (unknown, expired or revoked)."},

	// Sites.
	"sites.title": {"Arbetsplatser", "Sites"},
	"sites.none":  {"Du har inte tillgång till någon arbetsplats.", "You have access to no site."},
	"sites.owner": {"Ansvarig: %s", "Responsible: %s"},

	"sites.new":          {"Ny arbetsplats", "New site"},
	"sites.ident_hint":   {"Identifikationsnumret från Skatteverket: 13 tecken, A–Z och 0–9.", "The identification number from the Tax Agency: 13 characters, A–Z and 0–9."},
	"sites.name":         {"Namn", "Name"},
	"sites.address":      {"Adress", "Address"},
	"sites.byggherre":    {"Byggherre", "Byggherre (client)"},
	"sites.byggherre_nr": {"Byggherrens organisationsnummer", "The byggherre's organisation number"},
	"sites.tz":           {"Tidszon", "Time zone"},
	"sites.create":       {"Skapa arbetsplats", "Create site"},
	"sites.err.exists":   {"Arbetsplatsen finns redan (%s).", "The site exists already (%s)."},
	"admin.err.invalid":  {"Uppgifterna stämmer inte: %s", "The details are not right: %s"},

	// A refused field: "input.*" take the field's name ("field.*").
	"input.check_digit": {"%s har fel kontrollsiffra.", "%s has a wrong check digit."},
	"input.date":        {"%s har inget giltigt datum.", "%s holds no valid date."},
	"input.format":      {"%s har fel format.", "%s has the wrong format."},
	"input.want_date":   {"%s ska vara ett datum som 2027-06-30.", "%s must be a date like 2027-06-30."},
	"input.empty":       {"%s saknas eller är för långt.", "%s is missing or too long."},
	"input.field":       {"%s stämmer inte.", "%s is not right."},
	"input.invalid":     {"ett av fälten stämmer inte.", "one of the fields is not right."},

	"field.org_name":             {"Organisationens namn", "The organisation's name"},
	"field.org_number":           {"Organisationsnumret", "The organisation number"},
	"field.site_ident":           {"Identifikationsnumret", "The identification number"},
	"field.site_name":            {"Arbetsplatsens namn", "The site's name"},
	"field.byggherre_org_number": {"Byggherrens organisationsnummer", "The byggherre's organisation number"},
	"field.time_zone":            {"Tidszonen", "The time zone"},
	"field.hired_by":             {"Den som anlitat", "The hirer"},
	"field.person_name":          {"Namnet", "The name"},
	"field.identity":             {"Person- eller samordningsnumret", "The personal or coordination number"},
	"field.card_number":          {"Kortnumret", "The card number"},
	"field.chip_uid":             {"Chip-id:t", "The chip id"},
	"field.card_status":          {"Kortets status", "The card's status"},
	"field.direction":            {"Riktningen", "The direction"},
	"field.valid_until":          {"Giltig till", "Valid until"},

	// Contractors on a site.
	"contractors.title":            {"Entreprenörer", "Contractors"},
	"contractors.intro":            {"Företagen som arbetar på arbetsplatsen och vem som anlitat vem. Varje företag ser sin egen personal i liggaren.", "The companies working on the site and who hired whom. Each company sees its own staff in the ledger."},
	"contractors.chain":            {"Entreprenörskedjan", "The chain of contractors"},
	"contractors.level":            {"nivå %d", "level %d"},
	"contractors.removed":          {"Borttagen", "Removed"},
	"contractors.none":             {"Inga entreprenörer ännu.", "No contractors yet."},
	"contractors.add":              {"Lägg till entreprenör", "Add contractor"},
	"contractors.orgnr_hint":       {"Finns företaget redan i Liggare används det; annars skapas det med namnet nedan.", "If the company is in Liggare already it is used; otherwise it is created with the name below."},
	"contractors.name":             {"Företagets namn", "Company name"},
	"contractors.hired_by":         {"Anlitad av", "Hired by"},
	"contractors.err.owner":        {"Arbetsplatsens ansvarige kan inte vara sin egen entreprenör.", "The site's owner cannot be its own contractor."},
	"contractors.err.hired_by":     {"Den som anlitat måste vara ansvarig eller entreprenör på arbetsplatsen.", "The hirer must be the owner or a contractor on the site."},
	"contractors.remove":           {"Ta bort", "Remove"},
	"contractors.remove_label":     {"Ta bort %s från arbetsplatsen", "Remove %s from the site"},
	"contractors.remove_hint":      {"Ett företag som tas bort finns kvar i kedjan och i liggaren; dess kort skickas inte längre till arbetsplatsens terminaler.", "A company removed stays in the chain and in the ledger; its cards are no longer sent to the site's terminals."},
	"contractors.err.hired_others": {"Företaget har anlitat företag som fortfarande är på arbetsplatsen. Ta bort dem först.", "The company hired companies still on the site. Remove them first."},

	// Users of an organisation.
	"users.title":             {"Användare", "Users"},
	"users.intro":             {"Organisationens användare, deras roller och arbetsplatser. Nya användare får ett engångslösenord, byter det och slår på tvåstegsverifiering vid första inloggningen.", "The organisation's users, their roles and sites. New users get a one-time password, change it and turn on two-step verification at their first login."},
	"users.invite":            {"Bjud in användare", "Invite user"},
	"users.others":            {"Du administrerar också", "You also administer"},
	"users.email":             {"E-postadress", "E-mail address"},
	"users.role":              {"Roll", "Role"},
	"users.roles":             {"Roller", "Roles"},
	"users.sites":             {"Arbetsplatser", "Sites"},
	"users.sites_for_manager": {"Arbetsplatser (för platschef)", "Sites (for a site manager)"},
	"users.list":              {"Användare", "Users"},
	"users.invited":           {"%s är inbjuden.", "%s is invited."},
	"users.reset":             {"%s har fått ett nytt engångslösenord.", "%s has a new one-time password."},
	"users.issued":            {"Engångslösenord för %s", "One-time password for %s"},
	"users.once":              {"Visas bara nu. Lämna det till användaren på ett säkert sätt; det måste bytas vid inloggning.", "Shown only now. Hand it to the user safely; it must be changed at login."},
	"users.password":          {"Engångslösenord", "One-time password"},
	"users.revoke":            {"Ta bort", "Remove"},
	"users.revoke_label":      {"Ta bort rollen %s från %s", "Remove the role %s from %s"},
	"users.grant":             {"Ge roll", "Grant role"},
	"users.grant_label":       {"Roll att ge %s", "Role to grant %s"},
	"users.assign":            {"Lägg till", "Add"},
	"users.assign_label":      {"Arbetsplats att ge %s", "Site to give %s"},
	"users.unassign":          {"Ta bort", "Remove"},
	"users.unassign_label":    {"Ta bort %s från %s", "Remove %s from %s"},
	"users.no_sites":          {"Inga arbetsplatser.", "No sites."},
	"users.disabled":          {"Avstängd", "Disabled"},
	"users.pending":           {"Har inte loggat in", "Not logged in yet"},
	"users.no_totp":           {"Saknar tvåsteg", "No two-step"},
	"users.active":            {"Aktiv", "Active"},
	"users.reset_password":    {"Nytt lösenord", "New password"},
	"users.reset_label":       {"Nytt engångslösenord för %s", "New one-time password for %s"},
	"users.disable":           {"Stäng av", "Disable"},
	"users.disable_label":     {"Stäng av %s", "Disable %s"},
	"users.disable_explain":   {"Användaren loggas ut och kan inte logga in igen.", "The user is logged out and cannot log in again."},
	"users.disable_now":       {"Stäng av %s nu", "Disable %s now"},
	"users.err.taken":         {"E-postadressen används redan.", "The e-mail address is in use already."},
	"users.err.last_admin":    {"Organisationen måste ha minst en administratör.", "The organisation must keep at least one admin."},
	"users.err.self":          {"Du kan inte stänga av eller återställa ditt eget konto här.", "You cannot disable or reset your own account here."},
	"users.err.invalid":       {"Uppgifterna stämmer inte: kontrollera e-post, namn, roll och arbetsplatser.", "The details are not right: check e-mail, name, role and sites."},
	"users.err.forbidden":     {"Användaren tillhör även en annan organisation; den kan bara ändras av administratörer för alla.", "The user belongs to another organisation too; only admins of all of them may change it."},
	"role.org_admin":          {"Administratör", "Org admin"},
	"role.site_manager":       {"Platschef", "Site manager"},
	"role.contractor_admin":   {"Entreprenörsadministratör", "Contractor admin"},

	"site.ident":            {"ID-nummer", "Site ID"},
	"site.actions":          {"Åtgärder för arbetsplatsen", "Site actions"},
	"site.corrections":      {"Rättelser", "Corrections"},
	"site.import":           {"Importera personal", "Import staff"},
	"site.grants":           {"Kontrollbesök", "Inspections"},
	"site.onsite":           {"På plats nu", "On site now"},
	"site.nobody":           {"Ingen är incheckad just nu.", "Nobody is checked in right now."},
	"site.people_count":     {"%d på plats", "%d on site"},
	"site.since":            {"sedan %s", "since %s"},
	"site.attention":        {"Att åtgärda", "Needs attention"},
	"site.no_attention":     {"Inga glömda in- eller utcheckningar.", "No forgotten check-ins or check-outs."},
	"site.set_checkout":     {"Sätt utcheckning", "Set check-out"},
	"site.add_period":       {"Lägg till arbetspass", "Add work period"},
	"site.unknown":          {"Okända kort", "Unknown cards"},
	"site.no_unknown":       {"Inga okända kort.", "No unknown cards."},
	"site.assign_card":      {"Koppla till person", "Assign to person"},
	"site.today":            {"Dagens arbetspass", "Today's work periods"},
	"site.no_periods":       {"Inga arbetspass i dag.", "No work periods today."},
	"live.static":           {"Listan uppdateras när sidan laddas om.", "The list updates when the page is reloaded."},
	"live.reload":           {"Ladda om", "Reload"},
	"live.on":               {"Uppdateras direkt", "Updating live"},
	"live.off":              {"Återansluter …", "Reconnecting …"},
	"live.as_of":            {"Uppgifter per %s.", "As of %s."},
	"col.name":              {"Namn", "Name"},
	"col.company":           {"Företag", "Company"},
	"col.in":                {"In", "In"},
	"col.out":               {"Ut", "Out"},
	"col.duration":          {"Tid", "Duration"},
	"col.note":              {"Anmärkning", "Note"},
	"col.action":            {"Åtgärd", "Action"},
	"col.card":              {"Kort", "Card"},
	"col.taps":              {"Stämplingar", "Taps"},
	"col.first":             {"Första", "First"},
	"col.last":              {"Senaste", "Last"},
	"col.when":              {"Tidpunkt", "Time"},
	"col.kind":              {"Typ", "Kind"},
	"col.details":           {"Uppgifter", "Details"},
	"col.reason":            {"Anledning", "Reason"},
	"col.author":            {"Av", "By"},
	"col.state":             {"Status", "State"},
	"col.created":           {"Skapad", "Created"},
	"col.line":              {"Rad", "Line"},
	"col.column":            {"Kolumn", "Column"},
	"col.problem":           {"Fel", "Problem"},
	"flag.overdue":          {"Utcheckning saknas", "Check-out missing"},
	"flag.missing_checkout": {"Ej utcheckad", "Not checked out"},
	"flag.missing_checkin":  {"Incheckning saknas", "Check-in missing"},
	"flag.manual":           {"Manuellt", "Manual"},
	"flag.unknown_card":     {"Okänt kort", "Unknown card"},

	// Terminals.
	"terminals.title":           {"Terminaler", "Terminals"},
	"fleet.title":               {"Terminaler i drift", "Terminal fleet"},
	"fleet.summary":             {"%d terminaler totalt; %d med placering visas, de som behöver tillsyn först.", "%d terminals in all; %d with a placement are shown, those needing care first."},
	"term.title":                {"Terminaler", "Terminals"},
	"term.none":                 {"Inga terminaler står på platsen.", "No terminals stand at the site."},
	"term.id":                   {"Terminal", "Terminal"},
	"term.status":               {"Status", "Status"},
	"term.last_seen":            {"Senast hörd", "Last heard"},
	"term.outbox":               {"Ej synkade", "Not synced"},
	"term.oldest":               {"äldsta %s", "oldest %s"},
	"term.clock":                {"Klockavvikelse", "Clock offset"},
	"term.reader":               {"Läsare", "Reader"},
	"term.alarms":               {"Larm", "Alarms"},
	"term.online":               {"Ansluten", "Online"},
	"term.offline":              {"Ej ansluten", "Offline"},
	"term.alert":                {"Tyst under arbetstid", "Silent during working hours"},
	"term.alert_count":          {"%d terminaler har inte hörts av på över 10 minuter under arbetstid.", "%d terminals have not been heard from for over 10 minutes during working hours."},
	"term.see":                  {"Visa terminaler", "Show terminals"},
	"term.explain":              {"En terminal räknas som ansluten om den hörts av de senaste 2 minuterna. Stämplingar sparas i terminalen och skickas när nätet är tillbaka.", "A terminal counts as online if heard from in the last 2 minutes. Taps are kept on the terminal and sent when the network is back."},
	"term.credential":           {"Inloggning", "Credential"},
	"term.cred_valid":           {"Giltig", "Valid"},
	"term.cred_revoked":         {"Spärrad", "Revoked"},
	"term.cred_rotating":        {"Byte pågår", "Rotation pending"},
	"term.cred_since":           {"sedan %s, %s", "since %s, %s"},
	"term.cred_no_key":          {"utan egen nyckel", "no key of its own"},
	"term.cred_none":            {"Ingen inloggning", "No credential"},
	"term.issued_by.cli":        {"från kommandoraden", "from the command line"},
	"term.issued_by.enrollment": {"med registreringskod", "with an enrollment code"},
	"term.issued_by.rotation":   {"bytt av terminalen", "rotated by the terminal"},
	"term.rotate":               {"Ny registreringskod", "Re-enrollment code"},
	"term.rotate_label":         {"Ny registreringskod för terminal %s", "Re-enrollment code for terminal %s"},
	"term.revoke":               {"Spärra", "Revoke"},
	"term.revoke_label":         {"Spärra terminal %s", "Revoke terminal %s"},
	"term.revoke_now":           {"Spärra %s nu", "Revoke %s now"},
	"term.revoke_explain":       {"Terminalen nekas direkt och fortsätter stämpla utan nät. Hämta tillbaka den med en ny registreringskod.", "The terminal is refused at once and goes on recording taps offline. Bring it back with a re-enrollment code."},
	"term.revoked":              {"Terminal %s är spärrad. Den nekas vid nästa anslutning och en pågående anslutning bryts inom en minut. Dess stämplingar ligger kvar i terminalen.", "Terminal %s is revoked. It is refused at its next connection and a live connection ends within a minute. Its taps stay on the terminal."},
	"term.codes":                {"Registreringskoder", "Enrollment codes"},
	"term.codes_intro":          {"En registreringskod släpper in en ny terminal på den här arbetsplatsen. Den kan användas en gång och upphör av sig själv.", "An enrollment code lets a new terminal in at this site. It can be used once and ends by itself."},
	"term.new_id":               {"Terminalens id (valfritt)", "Terminal id (optional)"},
	"term.new_id_hint":          {"A–Z, a–z, 0–9, _ och -. Tomt låter den som installerar välja.", "A–Z, a–z, 0–9, _ and -. Empty lets the installer choose."},
	"term.direction":            {"Läsarens riktning", "Reader direction"},
	"term.create_code":          {"Skapa registreringskod", "Create enrollment code"},
	"term.code_created":         {"Registreringskoden är skapad.", "The enrollment code is made."},
	"term.issued":               {"Ny registreringskod", "New enrollment code"},
	"term.issued_reenroll":      {"Ny registreringskod för terminal %s", "New enrollment code for terminal %s"},
	"term.once":                 {"Visas bara nu. Kör kommandot på terminalen.", "Shown only now. Run the command on the terminal."},
	"term.code":                 {"Kod", "Code"},
	"term.command":              {"Kommando", "Command"},
	"term.any_id":               {"valfritt", "any"},
	"term.reenroll_explain":     {"Terminalen får en ny nyckel och inloggning och behåller sitt id och sina osynkade stämplingar. Den gamla inloggningen fungerar tills koden används och spärras då.", "The terminal gets a new key and credential and keeps its id and its unsynced taps. The old credential works until the code is used, and is revoked then."},
	"term.outstanding":          {"Oanvända koder", "Unused codes"},
	"term.no_codes":             {"Inga oanvända koder.", "No unused codes."},
	"term.cancel":               {"Makulera", "Cancel"},
	"term.cancel_code":          {"Makulera kod %d", "Cancel code %d"},
	"term.code_cancelled":       {"Koden är makulerad.", "The code is cancelled."},
	"term.err.invalid":          {"Kontrollera terminalens id, riktningen och giltighetstiden.", "Check the terminal id, the direction and the lifetime."},
	"term.err.elsewhere":        {"Terminalen står på en arbetsplats som du inte ansvarar för.", "The terminal stands at a site you do not manage."},
	"term.err.taken":            {"Det terminal-id:t används av en annan organisation. Välj ett annat.", "That terminal id is used by another organisation. Choose another."},
	"actor.inspector":           {"Skatteverket (kod %s)", "Tax Agency (grant %s)"},
	// The audit log.
	"audit.title":                         {"Logg", "Audit log"},
	"audit.nav":                           {"Logg", "Audit log"},
	"audit.intro":                         {"Vem som läst, exporterat eller ändrat vad, och när. Nyast först.", "Who read, exported or changed what, and when. Newest first."},
	"audit.intro_sites":                   {"Vem som läst, exporterat eller ändrat vad på dina arbetsplatser, och när. Nyast först.", "Who read, exported or changed what at your sites, and when. Newest first."},
	"audit.filter":                        {"Filtrera loggen", "Filter the log"},
	"audit.org":                           {"Organisation", "Organisation"},
	"audit.site":                          {"Arbetsplats", "Site"},
	"audit.all_sites":                     {"Alla", "All"},
	"audit.my_sites":                      {"Alla mina arbetsplatser", "All my sites"},
	"audit.actor":                         {"Vem", "Who"},
	"audit.anyone":                        {"Alla", "Anyone"},
	"audit.action":                        {"Händelse", "Action"},
	"audit.any_action":                    {"Alla", "Any"},
	"audit.from":                          {"Från och med", "From"},
	"audit.to":                            {"Till och med", "To"},
	"audit.person":                        {"Person", "Person"},
	"audit.none":                          {"Inga händelser matchar.", "No entries match."},
	"audit.pages":                         {"Sidor", "Pages"},
	"audit.older":                         {"Äldre händelser", "Older entries"},
	"audit.newest":                        {"Till de nyaste", "To the newest"},
	"audit.err.filter":                    {"Filtret är felaktigt: datum skrivs ÅÅÅÅ-MM-DD.", "The filter is wrong: dates are written YYYY-MM-DD."},
	"audit.action.person.identity.read":   {"Personnummer visat", "Identity number shown"},
	"audit.action.ledger.view":            {"Liggaren visad", "Ledger viewed"},
	"audit.action.ledger.export":          {"Liggaren exporterad", "Ledger exported"},
	"audit.action.ledger.correction.add":  {"Rättelse", "Correction"},
	"audit.action.register_extract":       {"Registerutdrag", "Register extract"},
	"audit.action.registry.import":        {"Import av personal", "Staff import"},
	"audit.action.retention.anonymise":    {"Avidentifierad (gallring)", "Anonymised (retention)"},
	"audit.action.inspector.grant.create": {"Kod till inspektör skapad", "Inspector code made"},
	"audit.action.inspector.grant.redeem": {"Inspektör loggade in", "Inspector signed in"},
	"audit.action.inspector.grant.revoke": {"Kod till inspektör återkallad", "Inspector code revoked"},
	"audit.action.account.login":          {"Inloggning", "Sign-in"},
	"audit.action.terminal.enrollment_code.create": {"Registreringskod skapad", "Enrollment code made"},
	"audit.action.terminal.enrollment_code.cancel": {"Registreringskod makulerad", "Enrollment code cancelled"},
	"audit.action.terminal.enroll":                 {"Terminal registrerad", "Terminal enrolled"},
	"audit.action.terminal.revoke":                 {"Terminal spärrad", "Terminal revoked"},
	"audit.action.terminal.credential.rotate":      {"Terminalens inloggning bytt", "Terminal credential rotated"},

	"dir.in":     {"inpassering", "entry"},
	"dir.out":    {"utpassering", "exit"},
	"dir.toggle": {"in/ut", "in/out"},

	// Corrections.
	"corr.title":           {"Rättelser", "Corrections"},
	"corr.intro":           {"En rättelse läggs till i liggaren med vem, när och varför. Ingenting raderas: det ursprungliga står kvar.", "A correction is added to the ledger with who, when and why. Nothing is erased: the original stays."},
	"corr.new":             {"Ny rättelse", "New correction"},
	"corr.list":            {"Gjorda rättelser", "Corrections made"},
	"corr.none":            {"Inga rättelser än.", "No corrections yet."},
	"corr.choose":          {"Välj …", "Choose …"},
	"corr.person":          {"Person", "Person"},
	"corr.to_person":       {"Rätt person", "Right person"},
	"corr.tap":             {"Stämpling", "Tap"},
	"corr.card":            {"Okänt kort", "Unknown card"},
	"corr.card_taps":       {"%d stämplingar", "%d taps"},
	"corr.start":           {"Start", "Start"},
	"corr.end":             {"Slut", "End"},
	"corr.checkout_time":   {"Utcheckningstid", "Check-out time"},
	"corr.checked_in_at":   {"Incheckad %s.", "Checked in %s."},
	"corr.tz":              {"Svensk tid.", "Swedish time."},
	"corr.reason":          {"Anledning", "Reason"},
	"corr.reason_hint":     {"Krävs. Till exempel ”glömt kort” eller ”gick hem 16:00 enligt arbetsledare”.", "Required. For example \"forgot card\" or \"left at 16:00 according to the foreman\"."},
	"corr.save":            {"Spara rättelsen", "Save the correction"},
	"corr.saved":           {"Rättelse nr %d är sparad.", "Correction no. %d is saved."},
	"corr.withdraw":        {"Återkalla", "Withdraw"},
	"corr.withdraws":       {"återkallar nr %d", "withdraws no. %d"},
	"corr.withdrawn_by":    {"Återkallad (nr %d)", "Withdrawn (no. %d)"},
	"corr.in_force":        {"Gäller", "In force"},
	"corr.err.kind":        {"Den här rättelsen får du inte göra här.", "You may not make this correction here."},
	"corr.err.reason":      {"Ange en anledning.", "Give a reason."},
	"corr.err.reason_long": {"Anledningen är för lång (högst 500 tecken).", "The reason is too long (at most 500 characters)."},
	"corr.err.person":      {"Välj en person.", "Choose a person."},
	"corr.err.time":        {"Ange datum och klockslag.", "Give a date and time."},
	"corr.err.order":       {"Slutet måste vara efter starten.", "The end must be after the start."},
	"corr.err.future":      {"Tiden ligger i framtiden.", "The time is in the future."},
	"corr.err.tap":         {"Välj en stämpling.", "Choose a tap."},
	"corr.err.card":        {"Välj ett kort.", "Choose a card."},
	"corr.err.withdraw":    {"Välj rättelsen som ska återkallas.", "Choose the correction to withdraw."},
	"corr.err.not_found":   {"Personen, stämplingen eller rättelsen finns inte här.", "The person, tap or correction does not exist here."},
	"corr.err.refused":     {"Rättelsen kunde inte sparas.", "The correction could not be saved."},

	"corr.refused.manual_long":     {"En manuell period får vara högst %d timmar.", "A manual period may last at most %d hours."},
	"corr.refused.anonymised":      {"Anonymiserade stämplingar kan inte knytas till någon.", "Anonymised taps cannot be assigned to anyone."},
	"corr.refused.withdrawal":      {"En återkallelse kan inte återkallas; lägg in rättelsen igen.", "A withdrawal cannot be withdrawn; add the correction again."},
	"corr.refused.checkout_ended":  {"Perioden från %s slutar redan %s. Makulera den utcheckningen för att sätta en annan.", "The period from %s already ends at %s. Void that check-out to set another."},
	"corr.refused.checkout_early":  {"Utcheckningen %s ligger före incheckningen %s.", "The check-out at %s comes before the check-in at %s."},
	"corr.refused.checkout_closed": {"Ingen öppen incheckning före %s: den senaste perioden slutade %s.", "No open check-in before %s: the last period ended at %s."},
	"corr.refused.no_checkin":      {"Ingen incheckning före %s att checka ut från.", "No check-in before %s to check out from."},

	"kind.set_checkout":       {"Sätt glömd utcheckning", "Set a forgotten check-out"},
	"kind.manual_period":      {"Lägg till arbetspass manuellt", "Add a work period by hand"},
	"kind.void_tap":           {"Makulera en felaktig stämpling", "Void an erroneous tap"},
	"kind.reassign_tap":       {"Flytta stämpling till rätt person", "Move a tap to the right person"},
	"kind.assign_card":        {"Koppla okänt kort till person", "Assign an unknown card to a person"},
	"kind.withdraw":           {"Återkallelse", "Withdrawal"},
	"kind_help.set_checkout":  {"För den som gick utan att stämpla ut.", "For someone who left without tapping out."},
	"kind_help.manual_period": {"För den som arbetade utan att stämpla, t.ex. glömt kort.", "For someone who worked without tapping, e.g. forgot the card."},
	"kind_help.void_tap":      {"Stämplingen står kvar men räknas inte.", "The tap stays on record but does not count."},
	"kind_help.reassign_tap":  {"Någon stämplade med en annans kort.", "Someone tapped with another person's card."},
	"kind_help.assign_card":   {"Kortets stämplingar, tidigare och senare, räknas för personen.", "The card's taps, earlier and later, count for the person."},
	"kind_help.withdraw":      {"Tar tillbaka en tidigare rättelse, som står kvar.", "Takes back an earlier correction, which stays on record."},
	"mark.counted":            {"räknad", "counted"},
	"mark.double":             {"dubbelstämpling", "double tap"},
	"mark.void":               {"makulerad", "voided"},
	"mark.unknown_card":       {"okänt kort", "unknown card"},
	"mark.unassigned":         {"terminal utan plats", "terminal not placed"},
	"mark.pending":            {"behandlas", "pending"},

	// Import.
	"import.title":   {"Importera personal och kort", "Import staff and cards"},
	"import.intro":   {"Lägg till personal för %s från en CSV-fil. Hela filen kontrolleras först; inget importeras förrän alla rader är rätt.", "Add staff of %s from a CSV file. The whole file is checked first; nothing is imported until every line is right."},
	"import.file":    {"CSV-fil", "CSV file"},
	"import.columns": {"Kolumner: namn; personnummer (eller samordningsnummer); land (för utländskt id); kortnummer; kort-uid; giltig till. Semikolon eller komma, UTF-8.", "Columns: namn (name); personnummer (or samordningsnummer); land (country, for a foreign id); kortnummer (card number); kort-uid (chip UID); giltig till (valid until). Semicolon or comma, UTF-8."},
	"import.submit":  {"Importera", "Import"},
	"import.no_file": {"Välj en fil.", "Choose a file."},
	"import.refused": {"Filen importerades inte. Rätta raderna nedan och försök igen.", "The file was not imported. Fix the lines below and try again."},
	"import.errors":  {"Fel i filen", "Errors in the file"},
	"import.more":    {"… och %d fel till.", "… and %d more errors."},
	"import.done":    {"Klart: %d personer och %d kort importerade.", "Done: %d people and %d cards imported."},

	"import.p.too_large":      {"Filen är större än %d MiB. Dela upp den.", "The file is larger than %d MiB. Split it."},
	"import.p.no_header":      {"Filen saknar rubrikrad.", "The file has no header line."},
	"import.p.missing_column": {"Kolumnen ”%s” saknas i rubrikraden.", "The column “%s” is missing from the header line."},
	"import.p.unreadable":     {"Raden går inte att läsa (kontrollera citattecknen).", "The line cannot be read (check its quotes)."},
	"import.p.too_many":       {"Fler än %d personer i en fil. Dela upp den.", "More than %d people in one file. Split it."},
	"import.p.no_people":      {"Filen innehåller ingen personal.", "The file holds no staff."},
	"import.p.repeated":       {"Finns redan på rad %d.", "Also on line %d."},
	"import.p.taken":          {"Kortet eller chipet är redan registrerat på någon annan.", "The card or chip is registered to someone else already."},

	// Inspector grants.
	"grants.title":    {"Kontrollbesök", "Inspections"},
	"grants.intro":    {"Ge Skatteverkets inspektör läsbehörighet till den här arbetsplatsen under besöket. Behörigheten loggas och upphör automatiskt.", "Give the Tax Agency's inspector read access to this site during the visit. The access is logged and ends by itself."},
	"grants.duration": {"Giltig i", "Valid for"},
	"grants.hours":    {"%d timmar", "%d hours"},
	"grants.create":   {"Skapa kod", "Create code"},
	"grants.created":  {"Koden är skapad.", "The code is made."},
	"grants.issued":   {"Ny kod för inspektören", "New code for the inspector"},
	"grants.once":     {"Visas bara nu. Läs upp koden eller skicka länken.", "Shown only now. Read the code out or send the link."},
	"grants.code":     {"Kod", "Code"},
	"grants.link":     {"Länk", "Link"},
	"grants.expires":  {"Gäller till", "Valid until"},
	"grants.uses":     {"Använd", "Used"},
	"grants.list":     {"Utfärdade koder", "Codes issued"},
	"grants.none":     {"Inga koder utfärdade.", "No codes issued."},
	"grants.active":   {"Gäller", "Valid"},
	"grants.ended":    {"Upphört", "Ended"},
	"grants.revoke":   {"Återkalla", "Revoke"},
	// Inspector view (kontrollbesök) and export.
	"site.inspect":             {"Liggaren per person", "Ledger by person"},
	"site.terminals":           {"Terminaler och koder", "Terminals and codes"},
	"inspect.title":            {"Personalliggare – kontroll", "Staff ledger – inspection"},
	"inspect.ident":            {"Id-nr", "Site id"},
	"inspect.now":              {"Läget nu (%s)", "As it is now (%s)"},
	"inspect.asof_at":          {"Som liggaren var %s", "As the ledger stood at %s"},
	"inspect.search":           {"Sök", "Search"},
	"inspect.search_hint":      {"Namn, personnummer, företag eller organisationsnummer", "Name, personal identity number, company or organisation number"},
	"inspect.asof":             {"Tidpunkt", "Moment"},
	"inspect.asof_hint":        {"Svensk tid. Tomt betyder nu.", "Swedish time. Empty means now."},
	"inspect.company":          {"Företag", "Company"},
	"inspect.all_companies":    {"Alla företag", "All companies"},
	"inspect.show":             {"Visa", "Show"},
	"inspect.export":           {"Ladda ner", "Download"},
	"inspect.summary":          {"%d personer, %d arbetspass, %d på plats vid tidpunkten.", "%d people, %d work periods, %d on site at the moment."},
	"inspect.none":             {"Inga personer matchar.", "No people match."},
	"inspect.orgnr":            {"Org.nr", "Org. no."},
	"inspect.owner":            {"byggherrens ansvar", "holds the byggherre's duties"},
	"inspect.name":             {"Namn", "Name"},
	"inspect.idnr":             {"Personnummer", "Identity number"},
	"inspect.notes":            {"Anmärkning", "Notes"},
	"inspect.open":             {"pågår", "ongoing"},
	"inspect.no_periods":       {"Inga arbetspass.", "No work periods."},
	"inspect.site":             {"Arbetsplats", "Site"},
	"inspect.periods":          {"Arbetspass", "Work periods"},
	"inspect.recorded":         {"Känt sedan", "Known since"},
	"inspect.corrections":      {"Rättelser", "Corrections"},
	"inspect.corrections_hint": {"Rättelser lägger bara till: det ursprungliga ligger kvar.", "Corrections only add: the original stays."},
	"inspect.no_corrections":   {"Inga rättelser.", "No corrections."},
	"inspect.withdraws":        {"återkallar rättelse %d", "withdraws correction %d"},
	"inspect.withdrawn_by":     {"återkallad genom %d", "withdrawn by %d"},
	"inspect.in_force":         {"Gäller", "In force"},
	"inspect.not_then":         {"Personen fanns inte i liggaren vid den tidpunkten.", "The person was not in the ledger at that moment."},
	"inspect.err.asof":         {"Ange tidpunkten som datum och klockslag.", "Give the moment as a date and time."},
	"inspect.err.invalid":      {"Begäran är ofullständig eller felaktig.", "The request is incomplete or wrong."},
	"inspect.err.too_large":    {"För många arbetspass för en PDF: välj CSV eller JSON, eller välj ett företag.", "Too many work periods for a PDF: choose CSV or JSON, or choose a company."},
}
