package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaStatus compares a database's applied migrations with the ones this
// binary embeds, without changing anything.
type SchemaStatus struct {
	// Known is the number of migrations this binary embeds.
	Known int
	// Applied are the versions recorded in schema_migrations.
	Applied []int
	// Pending names the embedded migrations not applied yet.
	Pending []string
	// Unknown are applied versions this binary does not know (a newer
	// binary migrated the database).
	Unknown []int
}

// Current reports whether the schema is exactly the one this binary expects.
func (s SchemaStatus) Current() bool { return len(s.Pending) == 0 && len(s.Unknown) == 0 }

// Status reads the schema's migration state (for liggare-server check).
func Status(ctx context.Context, pool *pgxpool.Pool) (SchemaStatus, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return SchemaStatus{}, fmt.Errorf("db: migrations: %w", err)
	}
	migs, err := readMigrations(sub)
	if err != nil {
		return SchemaStatus{}, err
	}
	st := SchemaStatus{Known: len(migs)}
	rows, err := pool.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err == nil {
		st.Applied, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		err = nil
	}
	if err != nil {
		return SchemaStatus{}, fmt.Errorf("db: read schema_migrations: %w", err)
	}
	applied := make(map[int]bool, len(st.Applied))
	for _, v := range st.Applied {
		applied[v] = true
		if v < 1 || v > len(migs) {
			st.Unknown = append(st.Unknown, v)
		}
	}
	for _, m := range migs {
		if !applied[m.version] {
			st.Pending = append(st.Pending, m.name)
		}
	}
	return st, nil
}
