package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// fieldContextKey is the key under which gqlgen keeps a field's context in a
// context.Context (unexported in gqlgen; learnt by asking graphql.GetFieldContext).
var fieldContextKey = func() any {
	var p keyProbe
	graphql.GetFieldContext(&p)
	return p.key
}()

// keyProbe records the key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

// fieldCtx is a context holding a field's context, as graphql.WithFieldContext makes
// one, in one allocation instead of two (the field context and the context layer):
// the generated executor's fields resolved in line (internal/leaffields) and the items
// of the lists marshalled in order (marshalSliceInOrder) are given theirs this way,
// and graphql.GetFieldContext finds it as gqlgen's own.
type fieldCtx struct {
	context.Context
	fc graphql.FieldContext
}

func (c *fieldCtx) Value(key any) any {
	if key == fieldContextKey {
		return &c.fc
	}
	return c.Context.Value(key)
}

// withFieldContext is graphql.WithFieldContext for a copy of fc: it returns the
// context and the field context it holds, whose Parent is ctx's field context.
func withFieldContext(ctx context.Context, fc graphql.FieldContext) (context.Context, *graphql.FieldContext) {
	c := &fieldCtx{Context: ctx, fc: fc}
	c.fc.Parent = graphql.GetFieldContext(ctx)
	return c, &c.fc
}
