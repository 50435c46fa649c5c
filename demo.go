package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"invitations/db"
)

// demoMember is the member whose token the server prints on the embedded database.
const demoMember = "ada"

var demoPeople = []string{
	"Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra", "Barbara Liskov",
	"Donald Knuth", "Margaret Hamilton", "Dennis Ritchie", "Frances Allen", "Ken Thompson",
	"Radia Perlman", "Leslie Lamport", "Hedy Lamarr", "John McCarthy", "Shafi Goldwasser",
	"Tony Hoare", "Adele Goldberg", "Niklaus Wirth", "Jean Sammet", "Vint Cerf",
	"Annie Easley", "Bjarne Stroustrup", "Sophie Wilson", "Guido Rossum", "Mary Kenneth Keller",
	"Linus Torvalds", "Evelyn Berezin", "Rob Pike", "Carol Shaw", "Robert Griesemer",
	"Lynn Conway", "Brian Kernighan", "Karen Jones", "Ivan Sutherland", "Joan Clarke",
	"Kristen Nygaard", "Elizabeth Feinler", "Butler Lampson", "Ida Rhodes", "Jim Gray",
	"Kathleen Booth", "Ward Cunningham", "Ruth Teitelbaum", "Larry Wall", "Betty Holberton",
	"Whitfield Diffie",
}

var demoNotes = []string{
	"Loved your talk on compilers, would be great to stay in touch.",
	"We met at the systems meetup last month. Let's connect!",
	"Your work on distributed consensus inspired our team.",
}

// loadDemo loads the demo network on an empty database and returns the demo member's
// handle; on a database that has members already it changes nothing.
func loadDemo(ctx context.Context, store *db.Store, logger *slog.Logger) (string, error) {
	var members int
	if err := store.DB().GetContext(ctx, &members, `SELECT count(*) FROM members`); err != nil {
		return "", err
	}
	if members > 0 {
		if m, err := store.MemberByHandle(ctx, demoMember); err != nil || m == nil {
			return "", err
		}
		return demoMember, nil
	}
	report, err := store.Import(ctx, bytes.NewReader(demoNetwork(store.Now())), db.ImportOptions{})
	if err != nil {
		return "", fmt.Errorf("demo data: %w", err)
	}
	if report.ErrorCount > 0 {
		return "", fmt.Errorf("demo data: line %d: %s", report.Errors[0].Line, report.Errors[0].Message)
	}
	logger.Info("demo network loaded", "members", report.Members, "connections", report.Connections, "invitations", report.Invitations)
	return demoMember, nil
}

// demoNetwork is a small network around ada, as JSON Lines for the importer: pending
// invitations she sent at ages spread over 0 to 200 days (the oldest already expired),
// a few answered or withdrawn ones, invitations waiting for her, and connections.
func demoNetwork(now time.Time) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	line := func(kind string, v map[string]any) { enc.Encode(map[string]any{kind: v}) }
	at := func(days float64) string {
		return now.Add(-time.Duration(days * float64(24*time.Hour))).Format(time.RFC3339)
	}
	line("member", map[string]any{"handle": demoMember, "name": "Ada Lovelace", "headline": "Analyst of engines", "plan": "STANDARD"})
	handles := make([]string, len(demoPeople))
	for i, name := range demoPeople {
		handles[i] = strings.ToLower(strings.Fields(name)[0]) // first names are unique in demoPeople
		line("member", map[string]any{"handle": handles[i], "name": name, "headline": "Computing pioneer"})
	}
	// 32 pending sent invitations, ages 0 to ~200 days: the ones past 180 days load as expired.
	for i := 0; i < 32; i++ {
		inv := map[string]any{"sender": demoMember, "recipient": handles[i], "status": "PENDING",
			"sentAt": at(float64(i) * 6.4), "source": db.Sources[i%len(db.Sources)]}
		if i%4 == 1 {
			inv["message"] = demoNotes[i%len(demoNotes)]
		}
		line("invitation", inv)
	}
	// History: accepted (and so connected), and withdrawn.
	for i := 32; i < 38; i++ {
		line("invitation", map[string]any{"sender": demoMember, "recipient": handles[i], "status": "ACCEPTED",
			"sentAt": at(float64(60 + i)), "respondedAt": at(float64(58 + i)), "source": "SEARCH"})
		line("connection", map[string]any{"a": demoMember, "b": handles[i], "since": at(float64(58 + i))})
	}
	line("invitation", map[string]any{"sender": demoMember, "recipient": handles[38], "status": "WITHDRAWN",
		"sentAt": at(40), "withdrawnAt": at(10)})
	// Waiting for ada's answer.
	for i := 39; i < len(handles); i++ {
		inv := map[string]any{"sender": handles[i], "recipient": demoMember, "status": "PENDING",
			"sentAt": at(float64(i-38) * 3), "source": "SUGGESTION"}
		if i%2 == 0 {
			inv["message"] = demoNotes[i%len(demoNotes)]
		}
		line("invitation", inv)
	}
	// Some connections among the others.
	for i := 1; i < 12; i++ {
		line("connection", map[string]any{"a": handles[0], "b": handles[i], "since": at(float64(300 + i))})
	}
	return buf.Bytes()
}

// importCmd loads a JSON Lines file ("-" for stdin), printing progress and bad lines.
func importCmd(ctx context.Context, cfg *config, logger *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: invitations import FILE (or - for standard input)")
	}
	var in io.Reader = os.Stdin
	var size int64
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	d, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.close()
	store := db.New(d.conn, cfg.Limits, nil)
	started := time.Now()
	report, err := store.Import(ctx, in, db.ImportOptions{Progress: func(lines int, bytes int64) {
		if size > 0 {
			fmt.Fprintf(stderr, "\rimport: %d lines, %.0f%%", lines, 100*float64(bytes)/float64(size))
		} else {
			fmt.Fprintf(stderr, "\rimport: %d lines", lines)
		}
	}})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	for _, e := range report.Errors {
		fmt.Fprintf(stderr, "line %d: %s\n", e.Line, e.Message)
	}
	fmt.Fprintf(stdout, "imported %d lines in %s: %d members, %d connections, %d invitations written, %d unchanged, %d bad lines\n",
		report.Lines, time.Since(started).Round(time.Millisecond), report.Members, report.Connections, report.Invitations, report.Unchanged, report.ErrorCount)
	if report.ErrorCount > 0 {
		return fmt.Errorf("%d bad lines were not loaded", report.ErrorCount)
	}
	return nil
}
