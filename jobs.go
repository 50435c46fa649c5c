package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"invitations/db"
)

// Background jobs, run by every replica of the server: the expiry sweep (one replica
// at a time works, by an advisory lock) and the reminder worker (replicas share the
// due reminders, each taken by one of them).

const (
	// sweepBatch is how many invitations one sweep transaction expires at most.
	sweepBatch = 500
	// reminderBatch is how many reminders one DeliverReminders call handles at most.
	reminderBatch = 100
)

// jobsConfig is the configuration of the background jobs.
type jobsConfig struct {
	// SweepInterval (SWEEP_INTERVAL) is the pause between sweeps; 0 turns the sweep
	// off on this replica.
	SweepInterval time.Duration
	// ReminderInterval (REMINDER_INTERVAL) is the pause between reminder rounds; 0
	// turns the worker off on this replica.
	ReminderInterval time.Duration
	Mail             mailConfig
}

// loadJobsConfig reads SWEEP_INTERVAL, REMINDER_INTERVAL and the mail variables. An
// invalid value is an error naming the variable.
func loadJobsConfig(getenv func(string) string) (jobsConfig, error) {
	cfg := jobsConfig{SweepInterval: time.Minute, ReminderInterval: 30 * time.Second}
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{
		{"SWEEP_INTERVAL", &cfg.SweepInterval},
		{"REMINDER_INTERVAL", &cfg.ReminderInterval},
	} {
		s := strings.TrimSpace(getenv(v.name))
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || (d > 0 && d < 10*time.Millisecond) || d > 24*time.Hour {
			return cfg, fmt.Errorf("%s must be a duration such as 30s or 5m (0 turns the job off, else 10ms to 24h), got %q", v.name, s)
		}
		*v.dst = d
	}
	mail, err := loadMailConfig(getenv)
	if err != nil {
		return cfg, err
	}
	cfg.Mail = mail
	return cfg, nil
}

// startJobs starts the expiry sweep and the reminder worker in goroutines that run
// until ctx ends or stop is called. stop ends them and waits until they have
// returned (a reminder being sent is finished and recorded first); calling it again
// does nothing.
func startJobs(ctx context.Context, store *db.Store, cfg *config, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(job string, every time.Duration, fn func(context.Context, *slog.Logger) error) {
		if every == 0 {
			logger.Info("background job off", "job", job)
			return
		}
		log := logger.With("job", job)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, log); err != nil {
				log.Error("background job stopped", "err", err)
			}
		}()
	}
	jobs := cfg.Jobs
	run("expiry-sweep", jobs.SweepInterval, func(ctx context.Context, log *slog.Logger) error {
		return store.RunExpirySweep(ctx, jobs.SweepInterval, sweepBatch, log)
	})
	run("reminders", jobs.ReminderInterval, func(ctx context.Context, log *slog.Logger) error {
		mailer := newMailer(jobs.Mail, log)
		if jobs.Mail.Addr == "" {
			log.Info("SMTP_ADDR is not set: reminder emails are logged, not sent")
		}
		return store.RunReminderWorker(ctx, mailer, jobs.ReminderInterval, reminderBatch, log)
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}
