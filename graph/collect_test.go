package graph

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// collectFields answers as graphql.CollectFields, whichever selection sets it is asked
// for in turn, @include and variables included, from any number of goroutines.
func TestCollectFieldsAnswersAsGqlgens(t *testing.T) {
	include := ast.DirectiveList{{Name: "include", Arguments: ast.ArgumentList{{Name: "if",
		Value: &ast.Value{Kind: ast.Variable, Raw: "x"}}}}}
	field := func(name, alias string, dirs ast.DirectiveList) *ast.Field {
		return &ast.Field{Name: name, Alias: alias, Directives: dirs}
	}
	backing := ast.SelectionSet{field("id", "id", nil), field("name", "n", include), field("headline", "headline", nil)}
	sets := []ast.SelectionSet{
		backing,
		backing[:2], // the same address, shorter
		{field("id", "id", nil)},
		{field("name", "name", include), field("name", "name", nil)},
		nil,
	}
	names := func(fs []graphql.CollectedField) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Alias+":"+f.Name)
		}
		return out
	}
	for _, x := range []bool{true, false} {
		oc := &graphql.OperationContext{Variables: map[string]any{"x": x}}
		var slot atomic.Pointer[collectedFields]
		for round := range 3 {
			for i, sel := range sets {
				got := collectFields(&slot, oc, sel, memberImplementors)
				want := graphql.CollectFields(oc, sel, memberImplementors)
				if !slices.Equal(names(got), names(want)) {
					t.Fatalf("x=%v, round %d, set %d: %v, want %v", x, round, i, names(got), names(want))
				}
				if c := slot.Load(); len(sel) > 0 && (c == nil || c.sel != &sel[0] || c.n != len(sel)) {
					t.Fatalf("set %d is not remembered", i)
				}
			}
		}
		// The items of a list, marshalled concurrently (go test -race checks the slot).
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 100 {
					sel := sets[i%2]
					if got, want := collectFields(&slot, oc, sel, memberImplementors), graphql.CollectFields(oc, sel, memberImplementors); !slices.Equal(names(got), names(want)) {
						t.Errorf("concurrently: %v, want %v", names(got), names(want))
						return
					}
				}
			})
		}
		wg.Wait()
	}
}
