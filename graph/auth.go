package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
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
	internal bool      // the token could not be checked (database error): retryable
	missing  bool      // no credentials were sent
	expires  time.Time // the token's exp
}

// Authenticator verifies bearer tokens: HS256 JWTs whose `sub` is a member handle.
// Use it through a pointer.
type Authenticator struct {
	Secret []byte
	Store  *db.Store
	// Now is the clock tokens are checked against; nil is time.Now.
	Now func() time.Time

	mu       sync.Mutex
	verified map[string]*Claims // tokens whose signature checked out, by token
}

// maxVerifiedTokens bounds the verified-token cache (about 0.5 KB a token); when it
// is full it starts over.
const maxVerifiedTokens = 10_000

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// TokenLeeway is the clock skew allowed between the token's issuer and this server
// when checking `nbf` and `iat`: a token issued a few seconds "in the future" by a
// slightly fast clock is accepted, one issued later than that is not. `exp` is
// honoured to the second, without leeway.
const TokenLeeway = 30 * time.Second

// verify checks the token's signature, algorithm and times, and returns its claims.
// `exp` is required (a token without it, or with `exp: null`, would never expire);
// `nbf` and `iat`, when present, may not be later than now plus TokenLeeway.
// A client sends the same token with every request, so a token whose signature
// checked out is kept: later requests skip the HMAC and the JSON decoding and only
// check the expiry again. The cache key is the whole token, signature included, so a
// forged or altered token never matches an entry.
func (a *Authenticator) verify(token string) (*Claims, error) {
	a.mu.Lock()
	claims, ok := a.verified[token]
	a.mu.Unlock()
	if ok {
		if !a.now().Before(claims.ExpiresAt.Time) {
			return nil, jwt.ErrTokenExpired
		}
		return claims, nil
	}
	claims = &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return a.Secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(a.now), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(TokenLeeway))
	if err != nil {
		return nil, err
	}
	if !a.now().Before(claims.ExpiresAt.Time) { // the leeway is for nbf and iat only
		return nil, jwt.ErrTokenExpired
	}
	a.mu.Lock()
	if a.verified == nil || len(a.verified) >= maxVerifiedTokens {
		a.verified = make(map[string]*Claims)
	}
	a.verified[token] = claims
	a.mu.Unlock()
	return claims, nil
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
	return a.authenticateHeader(r.Context(), r.Header.Get("Authorization"))
}

// authenticateHeader checks the value of an Authorization header.
func (a *Authenticator) authenticateHeader(ctx context.Context, header string) viewerState {
	if header == "" {
		return viewerState{err: "authentication required: send Authorization: Bearer <token>", missing: true}
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return viewerState{err: "the Authorization header must be: Bearer <token>"}
	}
	claims, err := a.verify(strings.TrimSpace(token))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return viewerState{err: "the token has expired"}
	case err != nil, !db.StorableText(claims.Subject): // no member's handle holds a NUL
		return viewerState{err: "the token is not valid"}
	}
	m, err := a.Store.MemberByHandle(ctx, claims.Subject)
	if err != nil {
		return viewerState{err: "the token could not be checked; try again", internal: true}
	}
	if m == nil {
		return viewerState{err: "the token's member does not exist"}
	}
	return viewerState{viewer: &Viewer{Member: m, Admin: claims.Role == "admin"}, expires: claims.ExpiresAt.Time}
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

// WebSocket close codes of an init refusal: 4403 Forbidden, as graphql-ws servers
// answer a rejected connection_init, and 1011 when the token could not be checked.
const (
	wsCloseForbidden = 4403
	wsCloseInternal  = 1011
)

type wsCancelKey struct{}

// WebsocketInit authenticates a WebSocket connection (transport.Websocket.InitFunc).
// The credentials come from the connection_init payload, as browsers cannot set
// headers on a WebSocket: {"Authorization": "Bearer <token>"} ("authorization" also
// works), or {"authToken": "<token>"} (with or without "Bearer "). Without them, the
// Authorization header of the upgrade request counts, if it was sent. Any other case
// refuses the connection: it is closed with code 4403 and the reason as the close
// message (1011 when the token could not be checked: retry). An accepted connection
// is closed when its token expires.
func (a *Authenticator) WebsocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	header := payload.Authorization()
	if header == "" {
		if token := strings.TrimSpace(payload.GetString("authToken")); token != "" {
			header = token
			if scheme, _, _ := strings.Cut(token, " "); !strings.EqualFold(scheme, "Bearer") {
				header = "Bearer " + token
			}
		}
	}
	var state viewerState
	if header != "" {
		state = a.authenticateHeader(ctx, header)
	} else {
		state, _ = ctx.Value(viewerKey{}).(viewerState) // from Middleware, on the upgrade request
	}
	if state.viewer == nil {
		reason, code := state.err, wsCloseForbidden
		switch {
		case state.internal:
			code = wsCloseInternal
		case state.missing || reason == "": // neither in the payload nor on the upgrade request
			reason = `authentication required: send {"Authorization": "Bearer <token>"} in connection_init`
		}
		ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), reason)
		return ctx, nil, errors.New(reason)
	}
	ctx = context.WithValue(ctx, viewerKey{}, state)
	if !state.expires.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, state.expires)
		ctx = context.WithValue(ctx, wsCancelKey{}, cancel)
	}
	return ctx, nil, nil
}

// WebsocketClose releases what WebsocketInit set up (transport.Websocket.CloseFunc).
func WebsocketClose(ctx context.Context, _ int) {
	if cancel, ok := ctx.Value(wsCancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}
