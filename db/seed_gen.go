package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// seedGen decides every seeded invitation from its sender's position p (0-based, in
// member id order) and its rank j (1..k) among that sender's invitations, newest first.
// Pseudo-random choices come from a hash of (p, j), so a seed is reproducible.
type seedGen struct {
	members    int
	maxK       int   // the largest per-sender count, < members/2
	lightTotal int64 // invitations shared by the light senders
	weightSum  int64 // the sum of their weights
	now        time.Time
	nowUs      int64 // now, in microseconds since the epoch
	expiredUs  int64 // a live invitation sent at or before this is stored EXPIRED
}

// seedSpan is how far back invitations go, in microseconds.
const seedSpan = int64(200 * Day / time.Microsecond)

func newSeedGen(members, invitations int, now time.Time, ttl time.Duration) *seedGen {
	g := &seedGen{members: members, maxK: min(2400, (members-1)/2-1), now: now, nowUs: now.UnixMicro()}
	// Rounded up, so that a row stored live is never past its lifetime at full precision.
	g.expiredUs = now.Add(-ttl).UnixMicro() + 1
	// Per-sender counts: heavy senders (every 100th) get 300..2,400; the others share
	// the rest in proportion to a pseudo-random weight from 1 to 9.
	heavyTotal := 0
	for i := 0; i < members/100; i++ {
		heavyTotal += min(g.maxK, 300+(i*7919)%2101)
	}
	g.lightTotal = int64(max(invitations-heavyTotal, 0))
	for p := 0; p < members; p++ {
		if p%100 != 99 {
			g.weightSum += seedWeight(p)
		}
	}
	return g
}

func seedWeight(p int) int64 { return 1 + (int64(p)*2654435761)%9 }

// k is how many invitations the sender at position p sends.
func (g *seedGen) k(p int) int {
	if p%100 == 99 {
		return min(g.maxK, 300+((p/100)*7919)%2101)
	}
	if g.weightSum == 0 {
		return 0
	}
	// lightTotal × weight ÷ weightSum, rounded half up.
	n := g.lightTotal * seedWeight(p)
	return min(g.maxK, int((2*n+g.weightSum)/(2*g.weightSum)))
}

// seedRow is one invitation; times are microseconds since the epoch, 0 for none.
type seedRow struct {
	recipient int // position
	status    string
	source    string
	note      bool
	sentAt    int64
	responded int64
	withdrawn int64
}

// row is the sender at position p's j-th invitation (1 = newest). Its invitations are
// evenly spaced over 200 days (at least 2 hours apart, k ≤ 2,400), so that no 7-day
// window holds more than 84; a STANDARD sender's notes are every m-th of them, at
// least 6.2 days apart, so that no calendar month holds more than 5.
func (g *seedGen) row(p, j int) seedRow {
	k := int64(g.k(p))
	h := seedHash(p, j)
	r, r2 := int(h%100), int((h>>32)%1000)
	sentAt := g.nowUs - (int64(2*j-1)*seedSpan)/(2*k)
	var note bool
	if (p+1)%20 == 0 { // PREMIUM: no monthly note quota
		note = r2%3 == 0
	} else {
		m := max(1, (31*k+999)/1000) // ⌈6.2 × k / 200⌉
		note = int64(j)%m == 0
	}
	var stored string
	if sentAt > g.nowUs-int64(14*Day/time.Microsecond) {
		switch {
		case r < 70:
			stored = "PENDING"
		case r < 85:
			stored = "ACCEPTED"
		case r < 90:
			stored = "IGNORED"
		default:
			stored = "WITHDRAWN"
		}
	} else {
		switch {
		case r < 45:
			stored = "ACCEPTED"
		case r < 60:
			stored = "WITHDRAWN"
		case r < 75:
			stored = "IGNORED"
		default:
			stored = "PENDING"
		}
	}
	answered := min(sentAt+int64(r2)*int64(15*time.Minute/time.Microsecond), g.nowUs)
	row := seedRow{recipient: (p + j) % g.members, status: stored, source: seedSources[r2%5], note: note, sentAt: sentAt}
	switch stored {
	case "ACCEPTED":
		row.responded = answered
	case "IGNORED":
		row.responded = answered
		if sentAt <= g.expiredUs {
			row.status = "EXPIRED"
		}
	case "PENDING":
		if sentAt <= g.expiredUs {
			row.status = "EXPIRED"
		}
	case "WITHDRAWN":
		row.withdrawn = answered
	}
	return row
}

// seedHash mixes (p, j) into 64 pseudo-random bits (SplitMix64's finaliser).
func seedHash(p, j int) uint64 {
	z := (uint64(p)<<32 | uint64(uint32(j))) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// copyInvitations streams every invitation with COPY (text format), in chunks of rows
// it formats itself, reporting progress about every 64k rows.
func (g *seedGen) copyInvitations(ctx context.Context, raw func(func(any) error) error, first int64, total int, progress func(done, total int)) error {
	return raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the database driver (%T) cannot COPY", dc)
		}
		r, w := io.Pipe()
		written := make(chan error, 1)
		go func() {
			err := g.writeInvitations(w, first, total, progress)
			w.CloseWithError(err)
			written <- err
		}()
		_, err := c.Conn().PgConn().CopyFrom(ctx, r,
			`COPY invitations (sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at) FROM STDIN`)
		r.CloseWithError(errors.New("the COPY ended")) // unblocks the writer if the COPY failed
		if werr := <-written; err == nil {
			err = werr
		}
		return err
	})
}

// writeInvitations writes every invitation to w as COPY's text rows.
func (g *seedGen) writeInvitations(w io.Writer, first int64, total int, progress func(done, total int)) error {
	const chunk = 256 << 10
	buf := make([]byte, 0, chunk+512)
	done, reported := 0, 0
	send := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	for p := range g.members {
		k := g.k(p)
		sender := strconv.AppendInt(nil, first+int64(p), 10)
		for j := 1; j <= k; j++ {
			r := g.row(p, j)
			buf = append(buf, sender...)
			buf = append(buf, '\t')
			buf = strconv.AppendInt(buf, first+int64(r.recipient), 10)
			if r.note {
				buf = append(buf, "\t"+seedNote+"\t"...)
			} else {
				buf = append(buf, "\t\\N\t"...)
			}
			buf = append(buf, r.source...)
			buf = append(buf, '\t')
			buf = append(buf, r.status...)
			buf = append(buf, '\t')
			buf = appendSeedTime(buf, r.sentAt)
			buf = append(buf, '\t')
			buf = appendSeedTime(buf, r.responded)
			buf = append(buf, '\t')
			buf = appendSeedTime(buf, r.withdrawn)
			buf = append(buf, '\n')
			done++
			if len(buf) >= chunk {
				if err := send(); err != nil {
					return err
				}
				if progress != nil && done-reported >= 64<<10 {
					progress(done, total)
					reported = done
				}
			}
		}
	}
	if err := send(); err != nil {
		return err
	}
	if progress != nil {
		progress(done, total)
	}
	return nil
}

// appendSeedTime appends a timestamp in microseconds as PostgreSQL's text input
// ("2026-11-18 12:00:00.000000+00"), or \N for 0.
func appendSeedTime(buf []byte, us int64) []byte {
	if us == 0 {
		return append(buf, `\N`...)
	}
	t := time.UnixMicro(us).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	frac := int(us % 1_000_000)
	if frac < 0 {
		frac += 1_000_000
	}
	buf = appendDigits(buf, y, 4)
	buf = append(buf, '-')
	buf = appendDigits(buf, int(mo), 2)
	buf = append(buf, '-')
	buf = appendDigits(buf, d, 2)
	buf = append(buf, ' ')
	buf = appendDigits(buf, h, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, mi, 2)
	buf = append(buf, ':')
	buf = appendDigits(buf, s, 2)
	buf = append(buf, '.')
	buf = appendDigits(buf, frac, 6)
	return append(buf, "+00"...)
}

// appendDigits appends n (≥ 0) with at least width digits.
func appendDigits(buf []byte, n, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for n > 0 || width > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	return append(buf, tmp[i:]...)
}
