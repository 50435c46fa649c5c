package db

import (
	"encoding/binary"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// binaryScan scans the rows of a request's reads (Store.withConn) straight from the binary
// values PostgreSQL sent, for the few column and field types the row structs use:
// bigint and integer into int64 and int, text into string, timestamptz into time.Time
// (UTC), boolean into bool, and pointers to those for nullable columns. pgx's Scan
// looks up and runs a scan plan per value, through several interfaces: 40 ns a value,
// and a page of 20 invitations with their recipients has 357 values. A result with any
// other type or format, and a row with a value this cannot take (NULL into a field that
// is not a pointer, an infinite timestamp), go through pgx's Scan, which decides.
//
// The text values that name a status, a source or a plan are shared, not allocated per
// row.
type binaryScan struct {
	checked, ok bool
}

// scan scans the current row of r into dst (the same destination types for every row);
// binary reports whether it did so from the binary values, without pgx's Scan.
func (b *binaryScan) scan(r pgx.Rows, dst []any) (binary bool, err error) {
	if !b.checked {
		b.checked = true
		b.ok = binaryScannable(r.FieldDescriptions(), dst)
	}
	if b.ok && scanBinary(r.RawValues(), dst) {
		return true, nil
	}
	return false, r.Scan(dst...)
}

// binaryScannable reports whether every column is of a type, and in a format, its
// destination takes in scanBinary.
func binaryScannable(fds []pgconn.FieldDescription, dst []any) bool {
	if len(fds) != len(dst) {
		return false
	}
	for i, d := range dst {
		fd := fds[i]
		binary := fd.Format == pgx.BinaryFormatCode
		var ok bool
		switch d.(type) {
		case *int64, **int64, *int:
			ok = binary && (fd.DataTypeOID == pgtype.Int8OID || fd.DataTypeOID == pgtype.Int4OID)
		case *string, **string: // text's binary form is its text, which pgx asks for
			ok = fd.DataTypeOID == pgtype.TextOID || fd.DataTypeOID == pgtype.VarcharOID
		case *time.Time, **time.Time:
			ok = binary && fd.DataTypeOID == pgtype.TimestamptzOID
		case *bool:
			ok = binary && fd.DataTypeOID == pgtype.BoolOID
		}
		if !ok {
			return false
		}
	}
	return true
}

// scanBinary scans raw into dst, whose types binaryScannable accepted; false when a
// value does not fit its destination (dst may then be partly written). The row's texts
// are copied into one string, which each text field then slices: one allocation a row
// instead of one a value (a page of 20 with their recipients has about 70).
func scanBinary(raw [][]byte, dst []any) bool {
	size := 0
	for i, d := range dst {
		switch d.(type) {
		case *string, **string:
			size += len(raw[i])
		}
	}
	var texts strings.Builder
	texts.Grow(size)
	var spanArray [16]textSpan // where the copied texts lie, beyond 16 on the heap
	spans := spanArray[:0]
	for i, d := range dst {
		v := raw[i]
		var ok bool
		switch d := d.(type) {
		case *int64:
			ok = decodeInto(d, v, binaryInt)
		case **int64:
			ok = decodeNullable(d, v, binaryInt)
		case *int:
			ok = decodeInto(d, v, binaryIntAsInt)
		case *string:
			if ok = v != nil; ok {
				spans = addText(&texts, spans, d, v)
			}
		case **string:
			ok = true
			*d = nil
			if v != nil {
				*d = new(string)
				spans = addText(&texts, spans, *d, v)
			}
		case *time.Time:
			ok = decodeInto(d, v, binaryTimestamptz)
		case **time.Time:
			ok = decodeNullable(d, v, binaryTimestamptz)
		case *bool:
			ok = decodeInto(d, v, binaryBool)
		}
		if !ok {
			return false
		}
	}
	all := texts.String()
	for _, sp := range spans {
		*sp.dst = all[sp.start:sp.end]
	}
	return true
}

// textSpan is where a field's text lies in its row's string.
type textSpan struct {
	dst        *string
	start, end int
}

// addText sets *dst to v at once when v is one of sharedText; otherwise it copies v
// into the row's texts and appends where it lies to spans, for scanBinary to set.
func addText(texts *strings.Builder, spans []textSpan, dst *string, v []byte) []textSpan {
	if s, ok := sharedText[string(v)]; ok {
		*dst = s
		return spans
	}
	start := texts.Len()
	texts.Write(v)
	return append(spans, textSpan{dst, start, texts.Len()})
}

// decodeInto decodes v into *d; false for NULL or a value decode refuses.
func decodeInto[T any](d *T, v []byte, decode func([]byte) (T, bool)) bool {
	if v == nil {
		return false
	}
	x, ok := decode(v)
	if ok {
		*d = x
	}
	return ok
}

// decodeNullable decodes v into a new *T in *d, or sets *d nil for NULL.
func decodeNullable[T any](d **T, v []byte, decode func([]byte) (T, bool)) bool {
	if v == nil {
		*d = nil
		return true
	}
	x, ok := decode(v)
	if ok {
		*d = &x
	}
	return ok
}

// binaryInt decodes a binary bigint or integer.
func binaryInt(v []byte) (int64, bool) {
	switch len(v) {
	case 8:
		return int64(binary.BigEndian.Uint64(v)), true
	case 4:
		return int64(int32(binary.BigEndian.Uint32(v))), true
	}
	return 0, false
}

// binaryIntAsInt decodes a binary bigint or integer that fits an int.
func binaryIntAsInt(v []byte) (int, bool) {
	n, ok := binaryInt(v)
	return int(n), ok && int64(int(n)) == n
}

// binaryBool decodes a binary boolean.
func binaryBool(v []byte) (bool, bool) {
	return len(v) == 1 && v[0] != 0, len(v) == 1
}

// postgresEpoch is 2000-01-01 00:00:00 UTC in Unix seconds: a binary timestamptz counts
// microseconds from it.
const postgresEpoch = 946684800

// binaryTimestamptz decodes a binary timestamptz as a UTC time; false for infinity.
func binaryTimestamptz(v []byte) (time.Time, bool) {
	if len(v) != 8 {
		return time.Time{}, false
	}
	us := int64(binary.BigEndian.Uint64(v))
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, false
	}
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return time.Unix(postgresEpoch+sec, frac*1e3).UTC(), true
}

// sharedText are the values of the enumerated text columns (statuses, sources, plans).
var sharedText = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{StatusPending, StatusAccepted, StatusIgnored, StatusWithdrawn, StatusExpired,
		PlanStandard, PlanPremium} {
		m[s] = s
	}
	for _, s := range Sources {
		m[s] = s
	}
	return m
}()
