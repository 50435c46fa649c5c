package graph

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// A field context given by withFieldContext is found by gqlgen as its own, with its
// parent, and builds the same path; other values pass through.
func TestWithFieldContextIsGqlgens(t *testing.T) {
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "value")
	index := 3
	ctx := graphql.WithFieldContext(base, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "edges"}}})
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &index})
	parent := graphql.GetFieldContext(ctx)

	ctx, fc := withFieldContext(ctx, graphql.FieldContext{Object: "InvitationEdge", Field: graphql.CollectedField{Field: &ast.Field{Alias: "node"}}})
	if got := graphql.GetFieldContext(ctx); got != fc || got.Object != "InvitationEdge" {
		t.Fatalf("GetFieldContext = %p, want %p", got, fc)
	}
	if fc.Parent != parent {
		t.Errorf("parent %p, want %p", fc.Parent, parent)
	}
	if got := graphql.GetPath(ctx).String(); got != "edges[3].node" {
		t.Errorf("path %q, want edges[3].node", got)
	}
	if got := ctx.Value(key{}); got != "value" {
		t.Errorf("another value: %v", got)
	}
	// A child given by gqlgen sees it as its parent.
	child := graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "recipient"}}})
	if got := graphql.GetPath(child).String(); got != "edges[3].node.recipient" {
		t.Errorf("child's path %q", got)
	}
}
