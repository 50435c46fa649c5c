package graph

import "context"

// ViewerID returns the database id of the request's authenticated member, and false
// when the request has none (no token, a bad one, or one that could not be checked).
// It reads what Authenticator.Middleware (or WebsocketInit) put in the context; the
// HTTP layer uses it to rate-limit per viewer.
func ViewerID(ctx context.Context) (int64, bool) {
	state, _ := ctx.Value(viewerKey{}).(viewerState)
	if state.viewer == nil || state.viewer.Member == nil {
		return 0, false
	}
	return state.viewer.Member.ID, true
}
