package db

import (
	"testing"
	"time"
)

// FuzzDecodeCursor: any string either decodes to a position that encodes back to the
// same cursor, or is refused as BAD_USER_INPUT; nothing panics.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Date(2026, 11, 21, 9, 30, 0, 123456000, time.UTC), 42))
	f.Add(encodeCursor(time.Unix(0, 0), 1))
	f.Add("")
	f.Add("not-a-cursor")
	f.Add("LTE6LTE") // "-1:-1"
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(&s, "after")
		if err != nil {
			if e, ok := AsError(err); !ok || e.Code != CodeBadUserInput {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if c.id <= 0 {
			t.Fatalf("%q decoded to id %d", s, c.id)
		}
		again, err := decodeCursor(ptrTo(encodeCursor(c.at, c.id)), "after")
		if err != nil || !again.at.Equal(c.at) || again.id != c.id {
			t.Fatalf("%q does not round-trip: %+v %+v %v", s, c, again, err)
		}
	})
}

// FuzzPendingFilter: any combination of day and time bounds is either refused as
// BAD_USER_INPUT or turned into a consistent range; nothing panics. (The query itself
// is exercised by the handler fuzz target on a real database.)
func FuzzPendingFilter(f *testing.F) {
	f.Add(14, -1, int64(0), int64(0))
	f.Add(30, 7, int64(0), int64(0))
	f.Add(7, 30, int64(1700000000), int64(1800000000))
	f.Add(-1, 0, int64(-99999999999), int64(99999999999))
	f.Fuzz(func(t *testing.T, older, newer int, after, before int64) {
		pf := PendingFilter{}
		if older >= 0 || older == -1 {
			pf.OlderThanDays = &older
		}
		if newer != -1 {
			pf.NewerThanDays = &newer
		}
		if after != 0 {
			a := time.Unix(after%(1<<35), 0).UTC()
			pf.SentAfter = &a
		}
		if before != 0 {
			b := time.Unix(before%(1<<35), 0).UTC()
			pf.SentBefore = &b
		}
		q, err := pendingRange(pf, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
		if err != nil {
			if e, ok := AsError(err); !ok || e.Code != CodeBadUserInput {
				t.Fatalf("%+v: %v", pf, err)
			}
			return
		}
		if len(q.where) != len(q.args) {
			t.Fatalf("%d conditions, %d arguments", len(q.where), len(q.args))
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
