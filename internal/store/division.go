package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/xueliang/xueliang/internal/model"
)

// levelRank is an SQL expression giving a division level's depth, so that
// levels compare in SQL the way model.DivisionLevel values compare in Go.
func levelRank(col string) string {
	return `CASE ` + col +
		` WHEN 'province' THEN 1 WHEN 'city' THEN 2 WHEN 'county' THEN 3` +
		` WHEN 'town' THEN 4 WHEN 'village' THEN 5 ELSE 0 END`
}

// UpsertDivisions inserts divisions, or updates name, level and parent of
// those whose code exists, all in one transaction: either every division is
// written or none is.
//
// Each division must pass Validate. A parent must exist, in the database or
// in divs, and be of a higher level than its child (a town's parent is a
// county, city or province); this keeps the tree free of cycles. Parents in
// divs are written before their children whatever the order of divs. When a
// code appears more than once in divs, the last entry wins.
//
// Errors: a wrapped *model.FieldError for invalid input or a level that
// does not fit under its parent, or ErrUnknownDivision for a missing parent.
func (s *Store) UpsertDivisions(ctx context.Context, divs []model.Division) error {
	if len(divs) == 0 {
		return nil
	}
	byCode := make(map[string]model.Division, len(divs))
	for _, d := range divs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("store: upsert division %q: %w", d.Code, err)
		}
		byCode[d.Code] = d
	}
	ordered := make([]model.Division, 0, len(byCode))
	for _, d := range byCode {
		ordered = append(ordered, d)
	}
	// Once parents are checked to be of a higher level, this order puts
	// them before their children.
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].Level != ordered[j].Level {
			return ordered[i].Level < ordered[j].Level
		}
		return ordered[i].Code < ordered[j].Code
	})
	for _, d := range ordered {
		if p, ok := byCode[d.ParentCode]; ok && p.Level >= d.Level {
			return fmt.Errorf("store: upsert division %q: %w", d.Code, parentLevelError(p.Code, p.Level, d.Level))
		}
	}

	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO divisions (code, name, level, parent_code) VALUES ($1, $2, $3, $4)
ON CONFLICT (code) DO UPDATE SET
	name = excluded.name, level = excluded.level, parent_code = excluded.parent_code`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range ordered {
			_, err := stmt.ExecContext(ctx, d.Code, d.Name, d.Level.String(), nullString(d.ParentCode))
			if s.dialect.classify(err) == errForeignKey {
				return fmt.Errorf("division %q: parent_code: %w %q", d.Code, ErrUnknownDivision, d.ParentCode)
			}
			if err != nil {
				return fmt.Errorf("division %q: %w", d.Code, err)
			}
		}
		// Check the level order against rows outside divs too: a parent
		// already stored, or stored children of a division whose level
		// changed.
		var child, parent, childLevel, parentLevel string
		err = tx.QueryRowContext(ctx, `
SELECT c.code, c.level, p.code, p.level
FROM divisions c JOIN divisions p ON c.parent_code = p.code
WHERE `+levelRank("p.level")+` >= `+levelRank("c.level")+`
ORDER BY c.code LIMIT 1`).Scan(&child, &childLevel, &parent, &parentLevel)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		pl, _ := model.ParseDivisionLevel(parentLevel)
		cl, _ := model.ParseDivisionLevel(childLevel)
		return fmt.Errorf("division %q: %w", child, parentLevelError(parent, pl, cl))
	})
	if err != nil {
		return fmt.Errorf("store: upsert divisions: %w", err)
	}
	return nil
}

func parentLevelError(parent string, parentLevel, childLevel model.DivisionLevel) error {
	return &model.FieldError{
		Field: "parent_code",
		Message: fmt.Sprintf("parent %s is a %s; the parent of a %s must be of a higher level",
			parent, parentLevel, childLevel),
	}
}

const divisionColumns = `code, name, level, COALESCE(parent_code, '')`

func scanDivision(sc scanner) (model.Division, error) {
	var d model.Division
	var level string
	if err := sc.Scan(&d.Code, &d.Name, &level, &d.ParentCode); err != nil {
		return d, err
	}
	l, err := model.ParseDivisionLevel(level)
	if err != nil {
		return d, fmt.Errorf("division %q: %w", d.Code, err)
	}
	d.Level = l
	return d, nil
}

// ListDivisions returns every division, sorted by code.
func (s *Store) ListDivisions(ctx context.Context) ([]model.Division, error) {
	return queryAll(ctx, s, "list divisions", `SELECT `+divisionColumns+` FROM divisions ORDER BY code`, nil, scanDivision)
}

// GetDivision returns the division with the given code, or ErrNotFound.
func (s *Store) GetDivision(ctx context.Context, code string) (*model.Division, error) {
	d, err := scanDivision(s.r.QueryRowContext(ctx,
		`SELECT `+divisionColumns+` FROM divisions WHERE code = $1`, code))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get division %q: %w", code, err)
	}
	return &d, nil
}

// subtreeCTE is a WITH clause defining subtree(code): the division whose
// code is the placeholder p and all its descendants, by parent_code. UNION
// (not UNION ALL) makes it terminate even on a corrupt, cyclic tree.
func subtreeCTE(p string) string {
	return `WITH RECURSIVE subtree (code) AS (
	SELECT code FROM divisions WHERE code = ` + p + `
	UNION
	SELECT d.code FROM divisions d JOIN subtree t ON d.parent_code = t.code
) `
}
