package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/xueliang/xueliang/internal/store"
)

// errAuditBroken is returned by `audit verify` when the chain is broken.
var errAuditBroken = errors.New("audit trail: the hash chain is broken")

// cmdAudit runs `xueliang audit verify`: it walks the audit trail of a
// data folder's database and names the first entry that was changed or
// deleted.
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("audit: usage: xueliang audit verify [--config FILE] [--data DIR]")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML configuration `file`")
	dataDir := fs.String("data", "", "data `folder` (overrides data_dir)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, "", *dataDir)
	if err != nil {
		return err
	}
	dsn := cfg.Store.DSN
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "xueliang.db")
	}
	st, err := store.Open(ctx, store.Config{Driver: cfg.Store.Driver, DSN: dsn})
	if err != nil {
		return err
	}
	defer st.Close()
	n, brk, err := st.VerifyAudit(ctx, func(checked int) { fmt.Fprintf(stderr, "%d entries checked...\n", checked) })
	if err != nil {
		return err
	}
	if brk != nil {
		fmt.Fprintf(stdout, "audit trail BROKEN at entry %d: %s (%d entries before it verify)\n", brk.ID, brk.Reason, n)
		return errAuditBroken
	}
	fmt.Fprintf(stdout, "audit trail intact: %d entries verified\n", n)
	return nil
}
