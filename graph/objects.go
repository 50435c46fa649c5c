package graph

import (
	"io"
	"slices"

	"github.com/99designs/gqlgen/graphql"
)

// objectJSON is how the generated executor's objects are written (object, below, and
// internal/marshallers): an object's fields, as graphql.CollectFields found them, and
// their marshalled values, in the same order. It writes the JSON object that gqlgen's
// FieldSet.MarshalGQL writes for the same fields and values, without what that costs
// per object: a map of the aliases written, and a heap copy of every field.
//
// Like FieldSet.MarshalGQL, it writes each alias once, the first time it appears
// (CollectFields merges the selections of one alias, except from fragments on types it
// cannot relate). Aliases are GraphQL names ([_A-Za-z][_0-9A-Za-z]*), which JSON needs
// no escape for.
type objectJSON struct {
	fields []graphql.CollectedField
	values []graphql.Marshaler
}

func (o objectJSON) MarshalGQL(w io.Writer) {
	sep := byte('{')
	for i := range o.fields {
		alias := o.fields[i].Alias
		if o.written(i, alias) {
			continue
		}
		writeKey(w, sep, alias)
		sep = ','
		o.values[i].MarshalGQL(w)
	}
	if sep == '{' {
		io.WriteString(w, "{}")
		return
	}
	io.WriteString(w, "}")
}

// writeKey writes sep, the quoted alias and a colon, in one write.
func writeKey(w io.Writer, sep byte, alias string) {
	writeAppended(w, func(b []byte) []byte { return append(append(append(b, sep, '"'), alias...), '"', ':') })
}

// written reports whether a field before the i-th has this alias.
func (o objectJSON) written(i int, alias string) bool {
	for j := range i {
		if o.fields[j].Alias == alias {
			return true
		}
	}
	return false
}

// object is what an object marshaller of the generated executor returns (see
// internal/marshallers): its field set, whose values the marshaller fills, and its
// fields. It writes itself as objectJSON does. newObject makes it with room for its
// values in one allocation, where graphql.NewFieldSet makes two and returning an
// objectJSON a third: the set does not know its fields, which only its MarshalGQL and
// the @defer views read, and the marshallers make a set of their own for deferred fields.
type object struct {
	set    graphql.FieldSet
	fields []graphql.CollectedField
}

func (o *object) MarshalGQL(w io.Writer) { objectJSON{o.fields, o.set.Values}.MarshalGQL(w) }

func newObject(fields []graphql.CollectedField) *object {
	n := len(fields)
	var o *object
	switch {
	case n <= 4:
		s := new(struct {
			object
			values [4]graphql.Marshaler
		})
		s.set.Values = s.values[:n]
		o = &s.object
	case n <= 8:
		s := new(struct {
			object
			values [8]graphql.Marshaler
		})
		s.set.Values = s.values[:n]
		o = &s.object
	default:
		o = &object{set: graphql.FieldSet{Values: make([]graphql.Marshaler, n)}}
	}
	o.fields = fields
	return o
}

// loneDelayed returns the index in fields of the only field not deferred whose name is
// one of names (the fields an object marshaller resolves concurrently), or -1 when
// there is none or more than one (see internal/marshallers).
func loneDelayed(fields []graphql.CollectedField, names ...string) int {
	lone := -1
	for i := range fields {
		f := &fields[i]
		if len(f.Deferrables) > 0 || !slices.Contains(names, f.Name) {
			continue
		}
		if lone >= 0 {
			return -1
		}
		lone = i
	}
	return lone
}
