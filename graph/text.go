package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"invitations/db"
)

// StorableText is a gqlgen extension (handler.Use) that refuses, with BAD_USER_INPUT,
// an operation any of whose text arguments PostgreSQL could not store (a NUL character
// or invalid UTF-8: db.StorableText), whether the text came in a variable or as a
// literal in the document. Such text could never succeed; refused here, it never
// reaches the database, which would answer with an error that looks like a failure of
// the server. It checks the operation and each fragment once, never through spreads,
// so its work is linear in the size of the request.
type StorableText struct{}

var (
	_ graphql.HandlerExtension        = StorableText{}
	_ graphql.OperationContextMutator = StorableText{}
)

// ExtensionName implements graphql.HandlerExtension.
func (StorableText) ExtensionName() string { return "StorableText" }

// Validate implements graphql.HandlerExtension.
func (StorableText) Validate(graphql.ExecutableSchema) error { return nil }

const unstorableText = "must be valid UTF-8 without NUL characters"

// MutateOperationContext implements graphql.OperationContextMutator.
func (StorableText) MutateOperationContext(_ context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	for name, v := range opCtx.Variables {
		if !storableValue(v) {
			err := badInput("variable $%s %s", name, unstorableText)
			err.Path = ast.Path{ast.PathName("variable"), ast.PathName(name)}
			return err
		}
	}
	if op := opCtx.Operation; op != nil {
		for _, d := range op.VariableDefinitions {
			if err := literalText(d.DefaultValue, "the default value of $"+d.Variable); err != nil {
				return err
			}
		}
		if err := selectionText(op.Directives, op.SelectionSet); err != nil {
			return err
		}
	}
	if opCtx.Doc != nil {
		for _, f := range opCtx.Doc.Fragments {
			if err := selectionText(f.Directives, f.SelectionSet); err != nil {
				return err
			}
		}
	}
	return nil
}

// storableValue reports whether every string in a coerced variable value is storable.
func storableValue(v any) bool {
	switch v := v.(type) {
	case string:
		return db.StorableText(v)
	case []any:
		for _, e := range v {
			if !storableValue(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range v {
			if !db.StorableText(k) || !storableValue(e) {
				return false
			}
		}
	}
	return true
}

// selectionText checks the literal arguments of directives and of a selection set's
// fields, without following fragment spreads (each fragment is checked on its own).
func selectionText(directives ast.DirectiveList, set ast.SelectionSet) *gqlerror.Error {
	for _, d := range directives {
		for _, a := range d.Arguments {
			if err := literalText(a.Value, fmt.Sprintf("argument %q of @%s", a.Name, d.Name)); err != nil {
				return err
			}
		}
	}
	for _, sel := range set {
		var err *gqlerror.Error
		switch sel := sel.(type) {
		case *ast.Field:
			for _, a := range sel.Arguments {
				if err = literalText(a.Value, fmt.Sprintf("argument %q of %s", a.Name, sel.Name)); err != nil {
					return err
				}
			}
			err = selectionText(sel.Directives, sel.SelectionSet)
		case *ast.InlineFragment:
			err = selectionText(sel.Directives, sel.SelectionSet)
		case *ast.FragmentSpread:
			err = selectionText(sel.Directives, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// literalText checks the strings of a literal value, lists and objects included.
func literalText(v *ast.Value, what string) *gqlerror.Error {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case ast.StringValue, ast.BlockValue:
		if !db.StorableText(v.Raw) {
			err := badInput("%s %s", what, unstorableText)
			if v.Position != nil {
				err.Locations = []gqlerror.Location{{Line: v.Position.Line, Column: v.Position.Column}}
			}
			return err
		}
	}
	for _, c := range v.Children {
		if !db.StorableText(c.Name) {
			return badInput("%s %s", what, unstorableText)
		}
		if err := literalText(c.Value, what); err != nil {
			return err
		}
	}
	return nil
}
