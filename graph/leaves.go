package graph

import (
	"bytes"
	"io"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"invitations/graph/model"
)

// The values of String and DateTime fields read straight from a struct field, and of
// the objects' global ids, as internal/leaffields rewrites them: each points at its
// field or object and is written when the response is. gqlgen's marshallers
// (graphql.MarshalString, graphql.MarshalID, model.MarshalDateTime) allocate a closure
// for every value, and a page of 20 invitations has 120 of them (an id cost six
// allocations: its text, its encoding, the closure and the quoting); an interface
// holding a struct of one pointer allocates nothing. They write the same bytes as
// gqlgen's (TestLeavesWriteWhatGqlgenWrites, FuzzLeafString).

// leafString is a String field's value.
type leafString struct{ s *string }

func (l leafString) MarshalGQL(w io.Writer) {
	writeAppended(w, func(b []byte) []byte { return appendQuoted(b, *l.s) })
}

// optionalLeafString is a nullable String field's value: graphql.Null for nil, as
// gqlgen's marshaller returns.
func optionalLeafString(s *string) graphql.Marshaler {
	if s == nil {
		return graphql.Null
	}
	return leafString{s}
}

// leafDateTime is a DateTime field's value (model.AppendDateTime).
type leafDateTime struct{ t *time.Time }

func (l leafDateTime) MarshalGQL(w io.Writer) {
	writeAppended(w, func(b []byte) []byte { return model.AppendDateTime(b, *l.t) })
}

// appendQuoted appends s as a JSON string, escaped as gqlgen's writeQuotedString
// escapes it: quote, backslash, tab, CR and LF by name, other control characters as
// \u00XX (upper-case hex), everything else as it is (bytes of invalid UTF-8 too).
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		case '\n':
			b = append(b, `\n`...)
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// nodeIDAppender is an object with a global id (db.Member, db.Invitation,
// db.Notification).
type nodeIDAppender interface{ AppendNodeID(b []byte) []byte }

// leafNodeID is an object's global id.
type leafNodeID[T nodeIDAppender] struct{ v T }

// nodeIDLeaf is the value of obj's id field. The id is base64url, which JSON needs no
// escape for.
func nodeIDLeaf[T nodeIDAppender](obj T) graphql.Marshaler { return leafNodeID[T]{obj} }

func (l leafNodeID[T]) MarshalGQL(w io.Writer) {
	writeAppended(w, func(b []byte) []byte { return append(l.v.AppendNodeID(append(b, '"')), '"') })
}

// writeAppended writes what appendTo appends to an empty slice. The executor marshals
// into a bytes.Buffer, whose spare capacity takes it without an allocation.
func writeAppended(w io.Writer, appendTo func([]byte) []byte) {
	if b, ok := w.(*bytes.Buffer); ok {
		b.Write(appendTo(b.AvailableBuffer()))
		return
	}
	w.Write(appendTo(nil))
}
