package db_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"invitations/db"
	"invitations/db/dbtest"
)

// The reads' binary scanning gives exactly what pgx's Scan gives, value for value,
// at the edges of each type; where it cannot take a value, pgx's Scan decides.
func TestBinaryScanMatchesPgx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgxConn(t)
	i64 := func() any { return new(int64) }
	pi64 := func() any { return new(*int64) }
	i := func() any { return new(int) }
	str := func() any { return new(string) }
	pstr := func() any { return new(*string) }
	tm := func() any { return new(time.Time) }
	ptm := func() any { return new(*time.Time) }
	b := func() any { return new(bool) }
	for _, c := range []struct {
		expr   string
		dst    func() any
		binary bool // the binary path takes it
	}{
		{"0::bigint", i64, true},
		{"-1::bigint", i64, true},
		{"9223372036854775807::bigint", i64, true},
		{"(-9223372036854775807 - 1)::bigint", i64, true},
		{"(-2147483648)::integer", i64, true},
		{"2147483647::integer", i, true},
		{"-5::integer", i, true},
		{"9223372036854775807::bigint", i, true},
		{"NULL::bigint", pi64, true},
		{"42::bigint", pi64, true},
		{"''::text", str, true},
		{"'PENDING'::text", str, true},
		{"'ADDRESS_BOOK'", str, true},
		{"'né à Zürich – 日本'::text", str, true},
		{"'varchar'::varchar(20)", str, true},
		{"NULL::text", pstr, true},
		{"'a note'::text", pstr, true},
		{"'2000-01-01 00:00:00+00'::timestamptz", tm, true},
		{"'1999-12-31 23:59:59.999999+00'::timestamptz", tm, true},
		{"'1970-01-01 00:00:00.000001+00'::timestamptz", tm, true},
		{"'2026-11-22 13:45:12.345678+05:30'::timestamptz", tm, true},
		{"'4713-01-01 00:00:00+00 BC'::timestamptz", tm, true},
		{"'294276-12-31 23:59:59.999999+00'::timestamptz", tm, true},
		{"NULL::timestamptz", ptm, true},
		{"'2026-11-22 12:00:00+00'::timestamptz", ptm, true},
		{"true", b, true},
		{"false", b, true},
		// pgx's Scan decides: refusals, and types the binary path does not know.
		{"NULL::bigint", i64, false},
		{"NULL::text", str, false},
		{"'infinity'::timestamptz", tm, false},
		{"'-infinity'::timestamptz", ptm, false},
		{"1.5::numeric", str, false},
		{"'2026-11-22'::date", tm, false},
	} {
		query := "SELECT " + c.expr
		fast, want := c.dst(), c.dst()
		binary, err := db.ScanRowForTest(ctx, conn, query, []any{fast})
		wantErr := conn.QueryRow(ctx, query).Scan(want)
		if binary != c.binary {
			t.Errorf("%s into %T: binary path %v, want %v", c.expr, fast, binary, c.binary)
		}
		if (err == nil) != (wantErr == nil) {
			t.Errorf("%s into %T: error %v, pgx's %v", c.expr, fast, err, wantErr)
			continue
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("%s into %T: %v, pgx's %v", c.expr, fast, pointee(fast), pointee(want))
		}
	}
}

// pgxConn is a pgx connection to a database of the test's own, reading timestamps as
// db.Open's connections do.
func pgxConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if err := db.ScanUTCForTest(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

func pointee(p any) any {
	v := reflect.ValueOf(p)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return v.Interface()
}

// A row of several columns is taken whole by the binary path, or not at all.
func TestBinaryScanTakesWholeRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgxConn(t)
	var id int64
	var note *string
	var at time.Time
	binary, err := db.ScanRowForTest(ctx, conn, `SELECT 7::bigint, NULL::text, '2026-01-02 03:04:05+00'::timestamptz`, []any{&id, &note, &at})
	if err != nil || !binary || id != 7 || note != nil || !at.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || at.Location() != time.UTC {
		t.Fatalf("got %v %v %v (binary %v, %v)", id, note, at, binary, err)
	}
	var n string
	binary, err = db.ScanRowForTest(ctx, conn, `SELECT 8::bigint, 2.5::numeric`, []any{&id, &n})
	if err != nil || binary || id != 8 || n != "2.5" {
		t.Fatalf("a numeric column: got %v %q (binary %v, %v); want pgx's Scan", id, n, binary, err)
	}
}

// A statement that fails after its first row fails: the error of a data-modifying
// WITH or an AFTER trigger, which run once the rows are out, is not lost.
func TestRowErrorAfterTheFirstRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgxConn(t)
	m, err := db.MemberRowForTest(ctx, conn, `SELECT (10 / (2 - d))::bigint, 'h', 'n', '', 'FREE', 0, now() FROM generate_series(1, 2) AS d`)
	if err == nil || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("got %+v, %v; want the division by zero of the second row", m, err)
	}
	m, err = db.MemberRowForTest(ctx, conn, `SELECT 10::bigint, 'h', 'n', '', 'FREE', 0, now()`)
	if err != nil || m.ID != 10 || m.Handle != "h" {
		t.Fatalf("got %+v, %v", m, err)
	}
}

// A row's texts, copied into one string and sliced, are each the column's value,
// whether shared (a status), NULL, empty, or beyond the first sixteen (of 24 copied).
func TestBinaryScanRowTexts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgxConn(t)
	var cols []string
	var fast, want []any
	for i := range 40 {
		switch i % 5 {
		case 0:
			cols = append(cols, fmt.Sprintf("'text %d – ü'::text", i))
		case 1:
			cols = append(cols, "'PENDING'::text")
		case 2:
			cols = append(cols, "NULL::text")
		case 3:
			cols = append(cols, "''::text")
		case 4:
			cols = append(cols, fmt.Sprintf("'note %d'::text", i))
		}
		if i%5 == 2 || i%5 == 4 {
			fast, want = append(fast, new(*string)), append(want, new(*string))
		} else {
			fast, want = append(fast, new(string)), append(want, new(string))
		}
	}
	query := "SELECT " + strings.Join(cols, ", ")
	binary, err := db.ScanRowForTest(ctx, conn, query, fast)
	if err != nil || !binary {
		t.Fatalf("binary %v, %v", binary, err)
	}
	if err := conn.QueryRow(ctx, query).Scan(want...); err != nil {
		t.Fatal(err)
	}
	for i := range fast {
		if !reflect.DeepEqual(fast[i], want[i]) {
			t.Errorf("column %d (%s): %v, pgx's %v", i, cols[i], pointee(fast[i]), pointee(want[i]))
		}
	}
}
