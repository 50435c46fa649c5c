package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// NoIntrospection refuses operations that ask for __schema or __type, before any
// resolver runs, as a validation failure (production mode). __typename stays allowed:
// clients such as Apollo add it everywhere.
type NoIntrospection struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = NoIntrospection{}

// ExtensionName names the extension.
func (NoIntrospection) ExtensionName() string { return "NoIntrospection" }

// Validate accepts any schema.
func (NoIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext looks for introspection fields at the operation's root.
func (NoIntrospection) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && introspects(oc.Operation.SelectionSet, 0) {
		oc.DisableIntrospection = true
		return &gqlerror.Error{
			Message:    "introspection is disabled",
			Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"},
		}
	}
	return nil
}

// introspects reports __schema or __type among the root fields (fragments expanded;
// validation has refused fragment cycles, and the nesting bound keeps it cheap).
func introspects(set ast.SelectionSet, nesting int) bool {
	if nesting > 10 {
		return false
	}
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, nesting+1) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && introspects(s.Definition.SelectionSet, nesting+1) {
				return true
			}
		}
	}
	return false
}
