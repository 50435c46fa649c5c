package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
)

// subscribe streams the viewer's invitation events of one kind: for each event, the
// invitation as the viewer sees it now (an invitation the viewer can no longer see,
// withdrawn since, is skipped). The channel is closed, and the subscription to the
// event source cancelled, when ctx ends; it is also closed when the event source
// stops (server shutdown) or drops this subscriber for falling behind, which the
// client sees as the subscription completing.
func (r *Resolver) subscribe(ctx context.Context, kind string) (<-chan *db.Invitation, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if r.Events == nil {
		return nil, errors.New("subscriptions: no event source configured")
	}
	viewerID := v.Member.ID
	events, cancel := r.Events.Subscribe(viewerID, kind)
	r.logger().DebugContext(ctx, "subscription started", "member", viewerID, "kind", kind)
	out := make(chan *db.Invitation, 1)
	go func() {
		defer close(out)
		defer cancel()
		for {
			var ev db.Event
			select {
			case <-ctx.Done():
				return
			case e, ok := <-events:
				if !ok {
					r.logger().DebugContext(ctx, "subscription closed by the event source", "member", viewerID, "kind", kind)
					return
				}
				ev = e
			}
			inv, err := r.Store.Invitation(ctx, viewerID, ev.InvitationID)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				r.logger().ErrorContext(ctx, "subscription: load invitation", "invitation", ev.InvitationID, "err", err)
				continue
			case inv == nil:
				continue
			}
			select {
			case out <- inv:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (r *Resolver) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// SubscriptionLoaders is a gqlgen extension (handler.Use) that gives every response
// of a subscription fresh loaders. LoaderMiddleware's loaders live as long as the
// HTTP request, and so do their caches: for a subscription that is the whole
// WebSocket connection or SSE stream, and members' names, connection counts and
// connection statuses would be served stale from the first event on.
type SubscriptionLoaders struct{ Store *db.Store }

var (
	_ graphql.HandlerExtension    = SubscriptionLoaders{}
	_ graphql.ResponseInterceptor = SubscriptionLoaders{}
)

// ExtensionName implements graphql.HandlerExtension.
func (SubscriptionLoaders) ExtensionName() string { return "SubscriptionLoaders" }

// Validate implements graphql.HandlerExtension.
func (SubscriptionLoaders) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse implements graphql.ResponseInterceptor.
func (e SubscriptionLoaders) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
			ctx = context.WithValue(ctx, loadersKey{}, newLoaders(e.Store))
		}
	}
	return next(ctx)
}
