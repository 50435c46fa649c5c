package graph

import (
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectedFields are the fields graphql.CollectFields returned for a selection set,
// known as gqlgen's own cache knows it: by the address and length of its selections.
type collectedFields struct {
	sel    *ast.Selection
	n      int
	fields []graphql.CollectedField
}

// collectFields is graphql.CollectFields for an object marshaller of the generated
// executor, which gives it a slot of its own in the operation's executionContext (see
// internal/marshallers): satisfies is the marshaller's, the same at every call. It
// returns the fields it collected last when the selection set is the same one, as for
// every item of a list but the first; the slot then holds the set asked for last.
// CollectFields's result depends on the operation's variables (@skip, @include) too,
// which an executionContext's operation fixes.
func collectFields(last *atomic.Pointer[collectedFields], oc *graphql.OperationContext, sel ast.SelectionSet, satisfies []string) []graphql.CollectedField {
	if len(sel) == 0 {
		return graphql.CollectFields(oc, sel, satisfies)
	}
	if c := last.Load(); c != nil && c.sel == &sel[0] && c.n == len(sel) {
		return c.fields
	}
	fields := graphql.CollectFields(oc, sel, satisfies)
	last.Store(&collectedFields{sel: &sel[0], n: len(sel), fields: fields})
	return fields
}
