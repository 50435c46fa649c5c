package graph

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The verified-token cache must not outlive a token's expiry, nor accept a token that
// differs from a cached one in any byte.
func TestVerifiedTokenCache(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	a := &Authenticator{Secret: []byte("0123456789abcdef0123456789abcdef"), Now: func() time.Time { return now }}
	token, err := SignToken(a.Secret, "ada", false, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second call is answered from the cache
		c, err := a.verify(token)
		if err != nil || c.Subject != "ada" {
			t.Fatalf("call %d: claims %+v, err %v", i, c, err)
		}
	}
	if len(a.verified) != 1 {
		t.Fatalf("cache holds %d tokens, want 1", len(a.verified))
	}
	forged := token[:len(token)-2] + "AA"
	if forged == token {
		forged = token[:len(token)-2] + "BB"
	}
	if _, err := a.verify(forged); err == nil {
		t.Fatal("a token with another signature was accepted")
	}
	now = now.Add(time.Minute - time.Microsecond)
	if _, err := a.verify(token); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	now = now.Add(time.Microsecond)
	if _, err := a.verify(token); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("at expiry, from the cache: err %v, want ErrTokenExpired", err)
	}
	other := &Authenticator{Secret: a.Secret, Now: a.Now}
	if _, err := other.verify(token); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("at expiry, uncached: err %v, want ErrTokenExpired", err)
	}
}

// TESTPLAN S13: a token must carry an expiry, and may not claim to be issued, or valid
// from, later than the allowed clock skew.
func TestTokenLifetime(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	secret := []byte("0123456789abcdef0123456789abcdef")
	in := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"Valid", jwt.MapClaims{"sub": "ada", "iat": in(0), "exp": in(time.Hour)}, true},
		{"NoExp", jwt.MapClaims{"sub": "ada", "iat": in(0)}, false},
		{"ExpNull", jwt.MapClaims{"sub": "ada", "iat": in(0), "exp": nil}, false},
		{"ExpPassed", jwt.MapClaims{"sub": "ada", "iat": in(-time.Hour), "exp": in(-time.Second)}, false},
		{"ExpNowNoLeeway", jwt.MapClaims{"sub": "ada", "iat": in(-time.Hour), "exp": in(0)}, false},
		{"IssuedInTheFuture", jwt.MapClaims{"sub": "ada", "iat": in(time.Hour), "exp": in(2 * time.Hour)}, false},
		{"IssuedJustPastTheLeeway", jwt.MapClaims{"sub": "ada", "iat": in(TokenLeeway + time.Second), "exp": in(time.Hour)}, false},
		{"IssuedWithinTheLeeway", jwt.MapClaims{"sub": "ada", "iat": in(TokenLeeway - time.Second), "exp": in(time.Hour)}, true},
		{"NotBeforeInTheFuture", jwt.MapClaims{"sub": "ada", "nbf": in(time.Hour), "exp": in(2 * time.Hour)}, false},
		{"NotBeforeWithinTheLeeway", jwt.MapClaims{"sub": "ada", "nbf": in(TokenLeeway - time.Second), "exp": in(time.Hour)}, true},
		{"IatNotANumber", jwt.MapClaims{"sub": "ada", "iat": "yesterday", "exp": in(time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Authenticator{Secret: secret, Now: func() time.Time { return now }}
			token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tc.claims).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // the second answer may come from the cache
				if _, err := a.verify(token); (err == nil) != tc.ok {
					t.Fatalf("call %d: err %v, want accepted %v", i, err, tc.ok)
				}
			}
		})
	}
}
