package store

import (
	"errors"
	"strconv"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect selects what differs between database engines. Everything else is
// written once (see the package comment).
type dialect int

const (
	dialectSQLite dialect = iota + 1
	// dialectPostgres is reserved for the PostgreSQL dialect; Open does not
	// accept it yet.
	dialectPostgres
)

func (d dialect) String() string {
	switch d {
	case dialectSQLite:
		return "sqlite"
	case dialectPostgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// errKind is what a driver error means to the store.
type errKind int

const (
	errOther      errKind = iota
	errUnique             // unique or primary key violation
	errForeignKey         // foreign key violation
)

// classify maps a driver error to an errKind.
func (d dialect) classify(err error) errKind {
	if err == nil {
		return errOther
	}
	switch d {
	case dialectSQLite:
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return errOther
		}
		// modernc.org/sqlite turns extended result codes on.
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errUnique
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errForeignKey
		}
	}
	return errOther
}

// limitOffset returns the LIMIT/OFFSET clause for a page, adding its values
// to a. limit <= 0 means no limit; offset <= 0 means from the start.
func (d dialect) limitOffset(a *args, limit, offset int) string {
	switch {
	case limit > 0 && offset > 0:
		return " LIMIT " + a.add(limit) + " OFFSET " + a.add(offset)
	case limit > 0:
		return " LIMIT " + a.add(limit)
	case offset > 0:
		if d == dialectSQLite {
			// SQLite has no OFFSET without LIMIT; -1 means no limit.
			return " LIMIT -1 OFFSET " + a.add(offset)
		}
		return " OFFSET " + a.add(offset)
	}
	return ""
}

// args collects the arguments of a query built piece by piece and hands out
// their $N placeholders.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
