package web

import (
	"errors"
	"net/http"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/registry"
)

// ActionImport is the audit action of an imported staff list.
const ActionImport = "registry.import"

func (s *Server) importRoutes() []route {
	return []route{
		{pattern: "GET /sites/{site}/import", access: site, action: account.ActCorrect, h: s.importPage},
		{pattern: "POST /sites/{site}/import", access: site, action: account.ActCorrect, h: s.importPost,
			maxBody: registry.MaxImportBytes + 64<<10},
	}
}

type importData struct {
	// OrgName is the employer whose staff the file adds.
	OrgName string
	Result  *registry.ImportResult
	Errors  *registry.ImportError
}

// importOrg is the organisation whose staff an import at this site adds:
// the one the principal acts for there. Each tenant controls its own
// staff's data, so nobody imports another employer's people.
func importOrg(rc *reqCtx) int64 {
	if rc.Access.StaffOf != 0 {
		return rc.Access.StaffOf
	}
	return rc.Access.Viewer
}

func (s *Server) importOrgName(r *http.Request, rc *reqCtx) (string, error) {
	var name string
	err := s.cfg.Pool.QueryRow(r.Context(), `SELECT name FROM organisations WHERE org_id = $1`, importOrg(rc)).Scan(&name)
	return name, err
}

func (s *Server) importPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	name, err := s.importOrgName(r, rc)
	if err != nil {
		return err
	}
	s.render(w, rc, http.StatusOK, "import", view{Title: rc.T("import.title"), D: importData{OrgName: name}})
	return nil
}

func (s *Server) importPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	name, err := s.importOrgName(r, rc)
	if err != nil {
		return err
	}
	d := importData{OrgName: name}
	file, _, err := r.FormFile("file")
	if err != nil {
		s.render(w, rc, http.StatusUnprocessableEntity, "import", view{Title: rc.T("import.title"), Error: rc.T("import.no_file"), D: d})
		return nil
	}
	defer file.Close()
	org := importOrg(rc)
	res, err := s.registry.ImportCSV(r.Context(), org, file)
	var ie *registry.ImportError
	switch {
	case errors.As(err, &ie):
		d.Errors = ie
		s.render(w, rc, http.StatusUnprocessableEntity, "import", view{Title: rc.T("import.title"), Error: rc.T("import.refused"), D: d})
		return nil
	case err != nil:
		return err
	}
	if err := audit.Record(r.Context(), s.cfg.Pool, audit.Entry{
		Actor: rc.P.Actor(), ActorOrgID: org, Action: ActionImport, OrgID: org, SiteID: rc.Site.ID,
		Detail: map[string]any{"people": res.People, "cards": res.Cards},
	}); err != nil {
		s.log.Error("web_audit_failed", logErr, err)
	}
	// New cards may resolve taps of unknown cards only for later taps;
	// pages still refresh their lists.
	s.hub.Publish([]int64{rc.Site.ID})
	d.Result = &res
	s.render(w, rc, http.StatusOK, "import", view{Title: rc.T("import.title"), Flash: rc.T("import.done", res.People, res.Cards), D: d})
	return nil
}

// lineProblemKeys are the catalogue keys of the problems said without
// arguments.
var lineProblemKeys = map[registry.Problem]string{
	registry.ProblemNoHeader:   "import.p.no_header",
	registry.ProblemUnreadable: "import.p.unreadable",
	registry.ProblemNoPeople:   "import.p.no_people",
	registry.ProblemTaken:      "import.p.taken",
}

// LineProblem says what is wrong with a line of a refused file, in the
// request's language.
func (v view) LineProblem(l registry.LineError) string {
	rc := v.rc
	switch l.Problem {
	case registry.ProblemTooLarge:
		return rc.T("import.p.too_large", registry.MaxImportBytes>>20)
	case registry.ProblemMissingColumn:
		return rc.T("import.p.missing_column", l.Column)
	case registry.ProblemTooMany:
		return rc.T("import.p.too_many", registry.MaxImportRows)
	case registry.ProblemRepeated:
		return rc.T("import.p.repeated", l.Prev)
	case registry.ProblemInvalid:
		return fieldProblem(rc, l.Field, l.Err)
	}
	if key, ok := lineProblemKeys[l.Problem]; ok {
		return rc.T(key)
	}
	return l.Message
}
