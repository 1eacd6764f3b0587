package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/ledger"
)

func TestExtract(t *testing.T) {
	w := newWorld(t)
	p := w.scenario()
	ctx := context.Background()
	// Someone read Anna's number earlier: that read is part of her extract.
	if err := audit.Record(ctx, w.pool, audit.Entry{Actor: "inspektor@bygg.se", ActorOrgID: w.bygg,
		Action: audit.ActionIdentityRead, OrgID: w.bygg, SiteID: w.eken, PersonID: p.anna}); err != nil {
		t.Fatal(err)
	}

	x, err := Extract(ctx, w.pool, w.keys, w.bygg, p.anna, "admin@bygg.se")
	if err != nil {
		t.Fatal(err)
	}
	if x.Format != ExtractFormat || x.FormatVersion != 1 || x.GeneratedAt.IsZero() || x.Controller.OrgID != w.bygg ||
		x.Controller.Name != "Bygg AB" {
		t.Errorf("extract header = %q %d %v %+v", x.Format, x.FormatVersion, x.GeneratedAt, x.Controller)
	}
	if x.Person.IDNumber == nil || *x.Person.IDNumber != "198112189876" || x.Person.Name != "Anna Andersson" ||
		x.Person.IDMasked != "19811218-****" || x.Person.AnonymisedAt != nil {
		t.Errorf("extract person = %+v (number %v)", x.Person, x.Person.IDNumber)
	}
	if len(x.Cards) != 1 || x.Cards[0].CardNumber != "AB0000000001" || !cmp.Equal(x.Cards[0].ChipUIDs, []string{"04A1B2C3D4E5F6"}) {
		t.Errorf("extract cards = %+v", x.Cards)
	}
	var cards []string
	for _, tp := range x.Taps {
		cards = append(cards, tp.CardID)
		if tp.Site == nil || tp.Site.Ident != "ABCDEFGHIJ123" || tp.TimeSource != "device" || tp.ReceivedAt.IsZero() ||
			tp.DeviceWallTime.IsZero() || tp.Mark == "" {
			t.Errorf("extract tap = %+v", tp)
		}
	}
	wantCards := []string{"04DEADBEEF0001", "04DEADBEEF0001", "AB0000000001", "AB0000000001", "04A1B2C3D4E5F6", "04A1B2C3D4E5F6"}
	if diff := cmp.Diff(wantCards, cards); diff != "" {
		t.Errorf("extract taps' cards, in time order (-want +got):\n%s", diff)
	}
	current, old := 0, 0
	for _, wp := range x.WorkPeriods {
		if wp.Site.Name != "Kvarteret Eken" || wp.OrgID != w.bygg {
			t.Errorf("extract period = %+v", wp)
		}
		if wp.RecordedTo == nil {
			current++
		} else {
			old++
		}
	}
	if current != 4 || old == 0 {
		t.Errorf("extract periods: %d current, %d older versions; want 4 and some", current, old)
	}
	var kinds []string
	for _, c := range x.Corrections {
		kinds = append(kinds, c.Kind)
	}
	if diff := cmp.Diff([]string{"assign_card", "manual_period"}, kinds); diff != "" {
		t.Errorf("extract corrections (-want +got):\n%s", diff)
	}
	var actions []string
	for _, e := range x.AuditLog {
		actions = append(actions, e.Action)
	}
	if diff := cmp.Diff([]string{audit.ActionIdentityRead, audit.ActionRegisterExtract}, actions); diff != "" {
		t.Errorf("extract audit log (-want +got):\n%s", diff)
	}

	// The extract is in the audit log, with counts only.
	entries, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{PersonID: p.anna, Action: audit.ActionRegisterExtract})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit entries of the extract = %v, %v", entries, err)
	}
	e := entries[0]
	wantDetail := map[string]any{"cards": 1.0, "work_periods": float64(len(x.WorkPeriods)), "taps": 6.0, "corrections": 2.0,
		"identity_number": true}
	if e.Actor != "admin@bygg.se" || e.ActorOrgID != w.bygg || e.OrgID != w.bygg || !cmp.Equal(e.Detail, wantDetail) {
		t.Errorf("audit entry of the extract = %+v", e)
	}

	// Only the employer may have it; nothing is logged for a refusal.
	for _, tc := range []struct {
		name           string
		viewer, person int64
	}{
		{"another tenant's person", w.el, p.anna},
		{"a contractor's person on the viewer's own site", w.bygg, p.bertil},
		{"no such person", w.bygg, 1 << 40},
	} {
		if _, err := Extract(ctx, w.pool, w.keys, tc.viewer, tc.person, "admin@el.se"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Extract = %v, want ErrNotFound", tc.name, err)
		}
	}
	if n := scalar[int](t, w.pool, `SELECT count(*)::int FROM audit_log WHERE action = $1`, audit.ActionRegisterExtract); n != 1 {
		t.Errorf("%d register_extract entries, want 1", n)
	}
	if _, err := Extract(ctx, w.pool, w.keys, w.bygg, p.anna, ""); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("Extract without an actor = %v, want audit.ErrInvalid", err)
	}

	// After retention the extract still works, and says what is left.
	if _, err := (&Job{Pool: w.pool}).RunOnce(ctx, w.at("2026-03-01 12:00:00")); err != nil {
		t.Fatal(err)
	}
	x, err = Extract(ctx, w.pool, w.keys, w.bygg, p.anna, "admin@bygg.se")
	if err != nil {
		t.Fatal(err)
	}
	if x.Person.IDNumber != nil || x.Person.Name != AnonymousName || x.Person.AnonymisedAt == nil || len(x.Cards[0].ChipUIDs) != 0 ||
		len(x.WorkPeriods) == 0 || x.Taps[0].CardID != AnonymousCardIdent {
		t.Errorf("extract after retention: person %+v, cards %+v, %d periods, taps %+v", x.Person, x.Cards, len(x.WorkPeriods), x.Taps)
	}
}

// TestExtractJSON checks the JSON has exactly the keys RegisterExtract
// documents, lists are never null, and times are UTC.
func TestExtractJSON(t *testing.T) {
	w := newWorld(t)
	p := w.scenario()
	ctx := context.Background()
	// A correction about one of Anna's taps, so that "tap" is filled.
	tapRef := ledger.TapID{Terminal: "EKEN", Epoch: 1, Seq: 3}
	w.correct(w.bygg, ledger.Correction{Kind: ledger.VoidTap, SiteID: w.eken, Tap: tapRef}, "2023-03-05 09:00:00")
	x, err := Extract(ctx, w.pool, w.keys, w.bygg, p.anna, "admin@bygg.se")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := x.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	first := func(key string) any {
		list, ok := doc[key].([]any)
		if !ok || len(list) == 0 {
			t.Fatalf("%s = %v, want a non-empty list", key, doc[key])
		}
		return list[0]
	}
	sorted := func(s string) []string {
		out := strings.Fields(s)
		slices.Sort(out)
		return out
	}
	site := "ident name site_id"
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"top", doc, "format format_version generated_at controller person cards work_periods taps corrections audit_log"},
		{"controller", doc["controller"], "org_id name org_number"},
		{"person", doc["person"], "person_id name id_kind id_number id_masked id_country created_at anonymised_at"},
		{"card", first("cards"), "card_id org_id card_number status valid_from valid_until chip_uids created_at updated_at"},
		{"work period", first("work_periods"), "period_id site org_id start end start_ref end_ref start_manual end_manual " +
			"missing_checkout missing_checkin recorded_from recorded_to"},
		{"work period site", first("work_periods").(map[string]any)["site"], site},
		{"tap", first("taps"), "terminal_id store_epoch seq card_id reader answer device_wall_time event_time time_source " +
			"received_at clock_offset_us site mode direction mark voided"},
		{"tap site", first("taps").(map[string]any)["site"], site},
		{"correction", first("corrections"), "correction_id kind site person_id tap card_ident start end withdraws reason " +
			"author author_org_id created_at"},
		{"audit entry", first("audit_log"), "audit_id at actor actor_org_id action site_id detail"},
	} {
		if diff := cmp.Diff(sorted(tc.want), keys(tc.v)); diff != "" {
			t.Errorf("%s keys (-want +got):\n%s", tc.name, diff)
		}
	}
	var voided map[string]any
	for _, c := range doc["corrections"].([]any) {
		if c.(map[string]any)["kind"] == "void_tap" {
			voided = c.(map[string]any)
		}
	}
	if voided == nil || !cmp.Equal(keys(voided["tap"]), sorted("terminal_id store_epoch seq")) {
		t.Errorf("void_tap correction in the JSON = %v", voided)
	}
	if doc["format"] != ExtractFormat || doc["format_version"] != 1.0 {
		t.Errorf("format %v version %v", doc["format"], doc["format_version"])
	}
	if at, _ := doc["generated_at"].(string); !strings.HasSuffix(at, "Z") {
		t.Errorf("generated_at = %q, want UTC", at)
	}
	if id, _ := doc["person"].(map[string]any)["id_number"].(string); id != "198112189876" {
		t.Errorf("person.id_number = %q", id)
	}
	// An empty list is [], never null.
	fanny, err := Extract(ctx, w.pool, w.keys, w.bygg, p.fanny, "admin@bygg.se")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := fanny.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`": null,\n  "`)) || !bytes.Contains(buf.Bytes(), []byte(`"taps": []`)) {
		t.Errorf("extract with no taps:\n%s", buf.Bytes())
	}
}
