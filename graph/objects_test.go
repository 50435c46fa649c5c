package graph

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// objectJSON writes what gqlgen's FieldSet.MarshalGQL writes for the same fields and
// values, whatever the fields and values are.
func TestObjectJSONWritesWhatFieldSetWrites(t *testing.T) {
	field := func(alias string) graphql.CollectedField {
		return graphql.CollectedField{Field: &ast.Field{Alias: alias, Name: alias}}
	}
	nested := func() graphql.Marshaler {
		return objectJSON{
			fields: []graphql.CollectedField{field("id"), field("name")},
			values: []graphql.Marshaler{graphql.MarshalID("TWVtYmVyOjE"), graphql.MarshalString(`"Ann" <ann>`)},
		}
	}
	long := "a_very_long_alias_that_does_not_fit_in_the_key_buffer_of_sixty_four_bytes_0123456789"
	for name, c := range map[string]struct {
		fields []graphql.CollectedField
		values func() []graphql.Marshaler
	}{
		"no fields": {nil, func() []graphql.Marshaler { return nil }},
		"one field": {[]graphql.CollectedField{field("totalCount")}, func() []graphql.Marshaler {
			return []graphql.Marshaler{graphql.MarshalInt(1000)}
		}},
		"several kinds of value": {
			[]graphql.CollectedField{field("__typename"), field("message"), field("recipient"), field("edges"), field("hasNextPage"), field(long)},
			func() []graphql.Marshaler {
				return []graphql.Marshaler{graphql.MarshalString("Invitation"), graphql.Null, nested(),
					graphql.Array{nested(), graphql.Null}, graphql.MarshalBoolean(true), graphql.MarshalFloat(0.25)}
			},
		},
		"a repeated alias is written once": {
			[]graphql.CollectedField{field("a"), field("b"), field("a"), field("_1")},
			func() []graphql.Marshaler {
				return []graphql.Marshaler{graphql.MarshalInt(1), graphql.MarshalInt(2), graphql.MarshalInt(3), graphql.MarshalInt(4)}
			},
		},
		"a repeated first alias": {
			[]graphql.CollectedField{field("a"), field("a")},
			func() []graphql.Marshaler { return []graphql.Marshaler{graphql.MarshalInt(1), graphql.MarshalInt(2)} },
		},
	} {
		want := graphql.NewFieldSet(c.fields)
		copy(want.Values, c.values())
		var wantBuf, got, gotPlain bytes.Buffer
		want.MarshalGQL(&wantBuf)
		objectJSON{c.fields, c.values()}.MarshalGQL(&got)
		objectJSON{c.fields, c.values()}.MarshalGQL(plainWriter{&gotPlain})
		if got.String() != wantBuf.String() || gotPlain.String() != wantBuf.String() {
			t.Errorf("%s: objectJSON wrote\n%s\n(to a plain writer\n%s)\nFieldSet wrote\n%s", name, got.String(), gotPlain.String(), wantBuf.String())
		}
	}
}

// plainWriter is an io.Writer that is not a bytes.Buffer.
type plainWriter struct{ b *bytes.Buffer }

func (p plainWriter) Write(b []byte) (int, error) { return p.b.Write(b) }

// An object from newObject holds a value for each field, resolves them, at once or
// concurrently, as a field set from graphql.NewFieldSet does, and writes them as
// objectJSON does.
func TestNewObject(t *testing.T) {
	for _, n := range []int{0, 1, 4, 5, 8, 9, 30} {
		fields := make([]graphql.CollectedField, n)
		for i := range n {
			fields[i] = graphql.CollectedField{Field: &ast.Field{Alias: fmt.Sprintf("f%d", i)}}
		}
		obj := newObject(fields)
		set := &obj.set
		if len(set.Values) != n {
			t.Fatalf("newObject(%d fields) holds %d values", n, len(set.Values))
		}
		for i := range n {
			if i%2 == 0 {
				set.Values[i] = graphql.MarshalInt(i)
				continue
			}
			set.Concurrently(i, func(context.Context) graphql.Marshaler { return graphql.MarshalInt(i) })
		}
		set.Dispatch(context.Background())
		want := graphql.NewFieldSet(fields)
		for i := range n {
			want.Values[i] = graphql.MarshalInt(i)
		}
		var got, wantBuf bytes.Buffer
		obj.MarshalGQL(&got)
		want.MarshalGQL(&wantBuf)
		if got.String() != wantBuf.String() {
			t.Errorf("n=%d: wrote %s, want %s", n, got.String(), wantBuf.String())
		}
	}
}

func TestLoneDelayed(t *testing.T) {
	field := func(name string, deferred bool) graphql.CollectedField {
		f := graphql.CollectedField{Field: &ast.Field{Name: name, Alias: name}}
		if deferred {
			f.Deferrables = []*graphql.Deferrable{{Label: "later"}}
		}
		return f
	}
	delayed := []string{"sender", "recipient"}
	for name, tc := range map[string]struct {
		fields []graphql.CollectedField
		want   int
	}{
		"none selected":         {[]graphql.CollectedField{field("id", false), field("message", false)}, -1},
		"one":                   {[]graphql.CollectedField{field("id", false), field("recipient", false)}, 1},
		"two":                   {[]graphql.CollectedField{field("sender", false), field("id", false), field("recipient", false)}, -1},
		"one twice (aliases)":   {[]graphql.CollectedField{field("recipient", false), field("recipient", false)}, -1},
		"the other deferred":    {[]graphql.CollectedField{field("sender", true), field("recipient", false)}, 1},
		"the only one deferred": {[]graphql.CollectedField{field("id", false), field("sender", true)}, -1},
	} {
		if got := loneDelayed(tc.fields, delayed...); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
}
