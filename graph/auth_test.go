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
