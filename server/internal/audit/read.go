package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MaxChoices bounds Choices' lists: the filters of the log page offer at
// most this many actors and actions (the most recent), and the free
// filters still reach the rest.
const MaxChoices = 200

// Choices are the actors and actions of the entries viewerOrg may see
// (within sites when not nil, as in Filter.Sites), for the filters of a
// page: each list ordered by name, at most MaxChoices, the most recently
// seen kept.
type Choices struct {
	Actors  []string
	Actions []string
}

// ListChoices returns the Choices of viewerOrg's log.
func ListChoices(ctx context.Context, q RowQuerier, viewerOrg int64, sites []int64) (Choices, error) {
	var c Choices
	if viewerOrg <= 0 {
		return c, fmt.Errorf("%w: no viewer", ErrInvalid)
	}
	for _, col := range []struct {
		name string
		dst  *[]string
	}{{"actor", &c.Actors}, {"action", &c.Actions}} {
		rows, err := q.Query(ctx, `
			SELECT v FROM (
				SELECT `+col.name+` AS v, max(audit_id) AS last FROM audit_log
				WHERE (org_id = $1 OR actor_org_id = $1) AND ($2::bigint[] IS NULL OR site_id = ANY($2))
				GROUP BY `+col.name+` ORDER BY last DESC LIMIT $3) recent
			ORDER BY v`, viewerOrg, sites, MaxChoices)
		if err != nil {
			return c, fmt.Errorf("audit: choices: %w", err)
		}
		if *col.dst, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return c, fmt.Errorf("audit: choices: %w", err)
		}
	}
	return c, nil
}
