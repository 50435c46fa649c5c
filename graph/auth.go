package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"invitations/db"
)

// Viewer is the authenticated member of a request.
type Viewer struct {
	Member *db.Member
	Admin  bool
}

type viewerKey struct{}

// viewerState is what the authentication middleware learned: a viewer, or why not.
type viewerState struct {
	viewer   *Viewer
	err      string
	internal bool // the token could not be checked (database error): retryable
}

// Authenticator verifies bearer tokens: HS256 JWTs whose `sub` is a member handle.
type Authenticator struct {
	Secret []byte
	Store  *db.Store
}

// Middleware puts the request's viewer, or the reason there is none, in the context.
// It never rejects a request itself: operations that need a viewer answer
// UNAUTHENTICATED, while introspection and the playground work without a token.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state := a.authenticate(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, state)))
	})
}

func (a *Authenticator) authenticate(r *http.Request) viewerState {
	header := r.Header.Get("Authorization")
	if header == "" {
		return viewerState{err: "authentication required: send Authorization: Bearer <token>"}
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return viewerState{err: "the Authorization header must be: Bearer <token>"}
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(token), claims, func(*jwt.Token) (any, error) { return a.Secret, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return viewerState{err: "the token has expired"}
	case err != nil:
		return viewerState{err: "the token is not valid"}
	}
	m, err := a.Store.MemberByHandle(r.Context(), claims.Subject)
	if err != nil {
		return viewerState{err: "the token could not be checked; try again", internal: true}
	}
	if m == nil {
		return viewerState{err: "the token's member does not exist"}
	}
	return viewerState{viewer: &Viewer{Member: m, Admin: claims.Role == "admin"}}
}

// Claims are the token's claims: `sub` is the member's handle, `role: "admin"` grants
// network-wide analytics.
type Claims struct {
	Role string `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// SignToken returns an HS256 token for handle, valid for ttl from now.
func SignToken(secret []byte, handle string, admin bool, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   handle,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if admin {
		c.Role = "admin"
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// viewer returns the request's viewer or an UNAUTHENTICATED error.
func viewer(ctx context.Context) (*Viewer, error) {
	state, _ := ctx.Value(viewerKey{}).(viewerState)
	if state.internal {
		return nil, &gqlerror.Error{Message: state.err, Extensions: map[string]any{"code": codeInternal, "retryable": true}}
	}
	if state.viewer == nil {
		msg := state.err
		if msg == "" {
			msg = "authentication required"
		}
		return nil, &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": "UNAUTHENTICATED"}}
	}
	return state.viewer, nil
}

// WithViewer returns a context carrying v, for tests and internal callers.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, viewerState{viewer: v})
}
