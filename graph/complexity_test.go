package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
)

// ComplexityLimit answers every operation as gqlgen's FixedComplexityLimit does (cost,
// statistics, error and code), however often it has seen the query, with whatever
// variables: a cost remembered for one set of variables is never used for another.
func TestComplexityLimitAnswersAsGqlgens(t *testing.T) {
	es := NewExecutableSchema(Config{Resolvers: &Resolver{}, Complexity: Complexity()})
	ours, theirs := executor.New(es), executor.New(es)
	limit := NewComplexityLimit(MaxComplexity)
	ours.Use(limit)
	theirs.Use(extension.FixedComplexityLimit(MaxComplexity))
	const paged = `query Page($n: Int, $f: PendingInvitationFilter) { pendingInvitations(first: $n, filter: $f) { nodes { id sender { handle } } } }`
	cases := []struct {
		query string
		vars  map[string]any
	}{
		{paged, map[string]any{"n": 10}},
		{paged, map[string]any{"n": 99999999}}, // refused
		{paged, map[string]any{"n": 10}},       // allowed again
		{paged, map[string]any{"n": 100, "f": map[string]any{"olderThanDays": 14}}},
		{paged, map[string]any{"f": map[string]any{"olderThanDays": 14}, "n": 100}},
		{paged, map[string]any{"n": 5000}}, // refused
		{paged, nil},
		{`{ a: pendingInvitations(first: 100) { nodes { id } } b: pendingInvitations(first: 100) { nodes { id } } }`, nil},
		{`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []any{"a", "b", "c"}}},
		{`query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []any{"a"}}},
	}
	for round := range 2 { // the second round finds every cost remembered
		for i, c := range cases {
			run := func(e *executor.Executor) (*extension.ComplexityStats, string) {
				rc, errs := e.CreateOperationContext(graphql.StartOperationTrace(context.Background()), &graphql.RawParams{Query: c.query, Variables: c.vars})
				code := ""
				if len(errs) > 0 {
					code, _ = errs[0].Extensions["code"].(string)
					code += ": " + errs[0].Message
				}
				s, _ := rc.Stats.GetExtension("ComplexityLimit").(*extension.ComplexityStats)
				return s, code
			}
			got, gotErr := run(ours)
			want, wantErr := run(theirs)
			if got == nil || want == nil || *got != *want || gotErr != wantErr {
				t.Errorf("round %d, case %d: ours %+v %q, gqlgen's %+v %q", round, i, got, gotErr, want, wantErr)
			}
		}
	}
	// The second round was answered from memory: one cost for each query and variables
	// (cases 0 and 2 are the same, and so are 3 and 4, whose variables differ in order).
	if n := limit.costs.Len(); n != len(cases)-2 {
		t.Errorf("%d costs remembered, want %d", n, len(cases)-2)
	}
}
