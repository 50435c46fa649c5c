package graph

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestMarshalSliceInOrder: items are marshalled in order on the caller's goroutine,
// each with its index in the path; a panic in one item is reported at that item's path
// and nulls the list, as gqlgen's concurrent marshaller does.
func TestMarshalSliceInOrder(t *testing.T) {
	newCtx := func() context.Context {
		ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter,
			func(ctx context.Context, p any) error { return errors.New("recovered") })
		return graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "edges"}}})
	}

	t.Run("InOrder", func(t *testing.T) {
		var order []int
		ret := marshalSliceInOrder(newCtx(), 3, func(ctx context.Context, i int) graphql.Marshaler {
			order = append(order, i) // no lock: a data race under -race if items ran concurrently
			return graphql.MarshalString(graphql.GetFieldContext(ctx).Path().String())
		})
		var out bytes.Buffer
		ret.MarshalGQL(&out)
		if got, want := out.String(), `["edges[0]","edges[1]","edges[2]"]`; got != want {
			t.Fatalf("marshalled %s, want %s", got, want)
		}
		if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
			t.Fatalf("items marshalled in order %v", order)
		}
	})

	t.Run("Panic", func(t *testing.T) {
		ctx := newCtx()
		ret := marshalSliceInOrder(ctx, 3, func(ctx context.Context, i int) graphql.Marshaler {
			if i == 1 {
				panic("boom")
			}
			return graphql.MarshalInt(i)
		})
		if ret != nil {
			t.Fatalf("a panicking item left the list %v, want null", ret)
		}
		errs := graphql.GetErrors(ctx)
		if len(errs) != 1 || errs[0].Message != "recovered" || errs[0].Path.String() != "edges[1]" {
			t.Fatalf("errors %v, want one recovered error at edges[1]", gqlerror.List(errs))
		}
	})

	t.Run("Empty", func(t *testing.T) {
		ret := marshalSliceInOrder(newCtx(), 0, func(ctx context.Context, i int) graphql.Marshaler {
			t.Fatal("called for an empty list")
			return nil
		})
		var out bytes.Buffer
		ret.MarshalGQL(&out)
		if strings.TrimSpace(out.String()) != "[]" {
			t.Fatalf("marshalled %q, want []", out.String())
		}
	})
}

// TestMarshalSliceInOrderUnless: a list is marshalled in order unless its items'
// selection names a field that may wait, directly or in a fragment; then concurrently,
// each item on its own goroutine.
func TestMarshalSliceInOrderUnless(t *testing.T) {
	field := func(name string) *ast.Field { return &ast.Field{Name: name, Alias: name} }
	waits := []string{"invitation"}
	cases := []struct {
		name       string
		sel        ast.SelectionSet
		concurrent bool
	}{
		{"plain fields", ast.SelectionSet{field("invitationId"), field("outcome")}, false},
		{"a field that waits", ast.SelectionSet{field("outcome"), field("invitation")}, true},
		{"in an inline fragment", ast.SelectionSet{&ast.InlineFragment{SelectionSet: ast.SelectionSet{field("invitation")}}}, true},
		{"in a named fragment", ast.SelectionSet{&ast.FragmentSpread{Name: "F",
			Definition: &ast.FragmentDefinition{SelectionSet: ast.SelectionSet{field("invitation")}}}}, true},
		{"a fragment without it", ast.SelectionSet{&ast.InlineFragment{SelectionSet: ast.SelectionSet{field("outcome")}}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
			ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "results"}}})
			// Item 0 waits until item 1 has started: only concurrent marshalling finishes
			// it (the in-order one would wait forever, so it is not asked to).
			started := make(chan struct{})
			ret := marshalSliceInOrderUnless(ctx, c.sel, waits, 2, func(ctx context.Context, i int) graphql.Marshaler {
				if c.concurrent {
					if i == 1 {
						close(started)
					} else {
						<-started
					}
				}
				return graphql.MarshalString(graphql.GetFieldContext(ctx).Path().String())
			})
			var out bytes.Buffer
			ret.MarshalGQL(&out)
			if got, want := out.String(), `["results[0]","results[1]"]`; got != want {
				t.Fatalf("marshalled %s, want %s", got, want)
			}
			if got := selectsField(c.sel, waits); got != c.concurrent {
				t.Fatalf("selectsField = %v, want %v", got, c.concurrent)
			}
		})
	}
}
