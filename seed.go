package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"invitations/db"
)

// seedCmd generates a benchmark network into an empty database.
func seedCmd(ctx context.Context, cfg *config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	members := fs.Int("members", 100_000, "members to create")
	invitations := fs.Int("invitations", 2_000_000, "invitations to create (approximately)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.close()
	store := db.New(d.conn, cfg.Limits, nil)
	started := time.Now()
	err = store.Seed(ctx, db.SeedOptions{Members: *members, Invitations: *invitations, Progress: func(done, total int) {
		pct := 100.0
		if total > 0 {
			pct = min(100, 100*float64(done)/float64(total))
		}
		fmt.Fprintf(stderr, "\rseed: %d of ~%d invitations (%.0f%%), %s", done, total, pct, time.Since(started).Round(time.Second))
	}})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d members and about %d invitations in %s\n", *members, *invitations, time.Since(started).Round(time.Second))
	return nil
}
