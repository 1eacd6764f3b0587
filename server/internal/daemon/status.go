package daemon

import (
	"html/template"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/syncserver"
)

// statusPage is a plain operator's page: ingest counters per terminal. It
// shows no personal data (no card ids), and refreshes itself.
type statusPage struct {
	pool *pgxpool.Pool
	sync *syncserver.Server
}

type terminalRow struct {
	TerminalID   string
	Epochs       int
	AckedThrough int64
	LastSeen     *time.Time
	OutboxDepth  *int64
	ClockOffset  *int64
	ReaderState  *string
	Alarms       []string
}

type statusData struct {
	Now         time.Time
	Connections int
	Taps        int64
	DeadLetters int64
	Conflicts   int64
	Terminals   []terminalRow
}

var statusTmpl = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Liggare: status</title>
<style>body{font:16px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #999;padding:.3em .6em;text-align:left}.alarm{color:#a00;font-weight:bold}</style>
</head><body>
<h1>Liggare server</h1>
<p>{{.Now.Format "2006-01-02 15:04:05 MST"}} · {{.Connections}} terminals connected ·
<strong>{{.Taps}}</strong> taps stored · {{.DeadLetters}} rejected ·
<span {{if .Conflicts}}class="alarm"{{end}}>{{.Conflicts}} unresolved conflicts</span></p>
<table><tr><th>Terminal</th><th>Outbox epochs</th><th>Taps held (contiguous)</th><th>Last seen</th>
<th>Outbox depth</th><th>Clock offset (ms)</th><th>Reader</th><th>Alarms</th></tr>
{{range .Terminals}}<tr><td>{{.TerminalID}}</td><td>{{.Epochs}}</td><td>{{.AckedThrough}}</td>
<td>{{with .LastSeen}}{{.Format "15:04:05"}}{{else}}never{{end}}</td>
<td>{{with .OutboxDepth}}{{.}}{{end}}</td><td>{{with .ClockOffset}}{{.}}{{end}}</td>
<td>{{with .ReaderState}}{{.}}{{end}}</td><td class="alarm">{{range .Alarms}}{{.}} {{end}}</td></tr>
{{end}}</table></body></html>
`))

func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := statusData{Now: time.Now(), Connections: p.sync.Connections()}
	err := p.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM taps), (SELECT count(*) FROM dead_letters),
		       (SELECT count(*) FROM tap_conflicts WHERE resolved_at IS NULL)`).
		Scan(&d.Taps, &d.DeadLetters, &d.Conflicts)
	if err == nil {
		var rows pgx.Rows
		rows, err = p.pool.Query(ctx, `
			SELECT t.terminal_id, count(c.store_epoch)::int, coalesce(sum(c.acked_through), 0)::bigint,
			       t.last_seen_at, t.outbox_depth, t.clock_offset_us / 1000, t.reader_state, coalesce(t.alarms, '{}')
			FROM terminals t LEFT JOIN ingest_cursors c USING (terminal_id)
			GROUP BY t.terminal_id ORDER BY t.terminal_id`)
		if err == nil {
			d.Terminals, err = pgx.CollectRows(rows, pgx.RowToStructByPos[terminalRow])
		}
	}
	if err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	statusTmpl.Execute(w, d)
}
