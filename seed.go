package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
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
	bar := newSeedProgress(stderr, started)
	stop := bar.tick(time.Second)
	err = store.Seed(ctx, db.SeedOptions{Members: *members, Invitations: *invitations,
		Progress: bar.progress, Phase: bar.phase})
	stop()
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d members and %d invitations in %s\n", *members, bar.total, time.Since(started).Round(time.Second))
	return nil
}

// seedProgress draws the seed's progress on one line per phase, redrawn in place
// (with \r) as rows are written and every second, so that the phases without a row
// count (index builds, key checks) visibly advance too:
//
//	seed: invitations: 1203441 of 2002007 (60%), 0:41
type seedProgress struct {
	mu          sync.Mutex
	w           io.Writer
	started     time.Time
	label       string
	done, total int
	width       int // of the line last drawn, to blank what a shorter one leaves
}

func newSeedProgress(w io.Writer, started time.Time) *seedProgress {
	return &seedProgress{w: w, started: started}
}

// phase ends the current line and starts one for the next phase.
func (b *seedProgress) phase(label string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.label != "" {
		b.drawLocked()
		fmt.Fprintln(b.w)
		b.width = 0
	}
	b.label = label
	b.drawLocked()
}

func (b *seedProgress) progress(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	b.drawLocked()
}

// tick redraws every interval (for the elapsed time) until the returned func is called.
func (b *seedProgress) tick(interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				b.mu.Lock()
				if b.label != "" {
					b.drawLocked()
				}
				b.mu.Unlock()
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// finish ends the last line.
func (b *seedProgress) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.label != "" {
		b.drawLocked()
		fmt.Fprintln(b.w)
	}
}

func (b *seedProgress) drawLocked() {
	line := "seed: " + b.label
	if b.label == db.SeedPhaseInvitations && b.total > 0 {
		line += fmt.Sprintf(": %d of %d (%.0f%%)", b.done, b.total, min(100, 100*float64(b.done)/float64(b.total)))
	}
	elapsed := time.Since(b.started)
	line += fmt.Sprintf(", %d:%02d", int(elapsed.Minutes()), int(elapsed.Seconds())%60)
	pad := max(0, b.width-len(line))
	b.width = len(line)
	fmt.Fprint(b.w, "\r"+line+strings.Repeat(" ", pad))
}
