package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// marshalSliceInOrder marshals a list's items one after the other on the calling
// goroutine. The generated executor calls it, instead of gqlgen's
// MarshalSliceConcurrently, for the lists named in resolver.go's go:generate line
// (see internal/inorder): lists whose items never wait on a loader batch, because their
// fields are plain values or the list's resolver preloaded what they read.
//
// Like gqlgen's, each item gets a field context with its index, and a panic while
// marshalling an item is reported as an error of that item's path and nulls the list.
func marshalSliceInOrder(ctx context.Context, n int, marshal func(ctx context.Context, i int) graphql.Marshaler) (ret graphql.Array) {
	ret = make(graphql.Array, n)
	// The items' contexts (each with its field context, fieldCtx) and indexes, in one
	// allocation each for the list.
	ctxs, index := make([]fieldCtx, n), make([]int, n)
	parent := graphql.GetFieldContext(ctx)
	for i := range n {
		index[i] = i
		c := &ctxs[i]
		c.Context, c.fc.Parent, c.fc.Index = ctx, parent, &index[i]
		if !marshalItem(c, ret, i, marshal) {
			return nil
		}
	}
	return ret
}

// marshalItem sets ret[i]; false after a panic, which it reports.
func marshalItem(ctx context.Context, ret graphql.Array, i int, marshal func(context.Context, int) graphql.Marshaler) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			ok = false
		}
	}()
	ret[i] = marshal(ctx, i)
	return true
}

// marshalSliceInOrderUnless marshals a list's items in order (marshalSliceInOrder)
// unless their selection names one of the fields waits, which may wait on a loader
// batch: then one goroutine per item, as gqlgen does, so that every item's key joins
// the batch before it is fetched. The generated executor calls it for the lists named
// TYPE:FIELD,... in resolver.go's go:generate line (see internal/inorder).
func marshalSliceInOrderUnless(ctx context.Context, sel ast.SelectionSet, waits []string, n int, marshal func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	if selectsField(sel, waits) {
		return graphql.MarshalSliceConcurrently(ctx, n, 0, false, marshal)
	}
	return marshalSliceInOrder(ctx, n, marshal)
}

// selectsField reports whether sel names one of the fields, directly or in a fragment,
// whether or not a directive skips it.
func selectsField(sel ast.SelectionSet, fields []string) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if slices.Contains(fields, s.Name) {
				return true
			}
		case *ast.InlineFragment:
			if selectsField(s.SelectionSet, fields) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition == nil || selectsField(s.Definition.SelectionSet, fields) {
				return true
			}
		}
	}
	return false
}
