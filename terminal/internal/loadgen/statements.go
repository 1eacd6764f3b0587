package loadgen

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// StatementsConf are the PostgreSQL settings that make the cluster count
// its statements (Options.Statements): pg_stat_statements, with planning
// counted apart from execution.
var StatementsConf = map[string]string{
	"shared_preload_libraries":          "pg_stat_statements",
	"pg_stat_statements.track_planning": "on",
	"pg_stat_statements.max":            "1000",
}

// Statements a Report lists, by total time: topStatements in its JSON,
// shownStatements of them in its text.
const (
	topStatements   = 50
	shownStatements = 12
)

// Statement is what PostgreSQL counted for one statement during a measured
// phase (pg_stat_statements), summed over the backends of every replica.
type Statement struct {
	Query string `json:"query"`
	Calls int64  `json:"calls"`
	// Plans is how many times it was planned: a prepared statement is
	// planned at each of its first executions on a backend (custom plans),
	// then only when PostgreSQL prefers a custom plan again.
	Plans  int64   `json:"plans"`
	PlanMs float64 `json:"plan_ms"`
	ExecMs float64 `json:"exec_ms"`
}

// PGStatements sums what pg_stat_statements counted in a measured phase.
type PGStatements struct {
	Calls  int64   `json:"calls"`
	Plans  int64   `json:"plans"`
	PlanMs float64 `json:"plan_ms"`
	ExecMs float64 `json:"exec_ms"`
	// Top are the statements that took most time, planning and
	// executing.
	Top []Statement `json:"top"`
}

// resetStatements forgets what pg_stat_statements counted so far. Only
// with Options.Statements.
func (e *Env) resetStatements(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return fmt.Errorf("loadgen: statements: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("loadgen: statements: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return fmt.Errorf("loadgen: statements: %w", err)
	}
	return nil
}

// statements reads what pg_stat_statements counted since resetStatements,
// leaving out the harness's own queries. Only with Options.Statements.
func (e *Env) statements(ctx context.Context) (PGStatements, error) {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return PGStatements{}, fmt.Errorf("loadgen: statements: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT query, calls, plans, total_plan_time, total_exec_time
		FROM pg_stat_statements
		WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_current_snapshot%'
		  AND query NOT LIKE '%pg_stat_database%'
		ORDER BY total_plan_time + total_exec_time DESC`)
	if err != nil {
		return PGStatements{}, fmt.Errorf("loadgen: statements: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Statement, error) {
		var s Statement
		err := row.Scan(&s.Query, &s.Calls, &s.Plans, &s.PlanMs, &s.ExecMs)
		return s, err
	})
	if err != nil {
		return PGStatements{}, fmt.Errorf("loadgen: statements: %w", err)
	}
	var st PGStatements
	for _, s := range all {
		st.Calls += s.Calls
		st.Plans += s.Plans
		st.PlanMs += s.PlanMs
		st.ExecMs += s.ExecMs
	}
	st.Top = all[:min(len(all), topStatements)]
	return st, nil
}
