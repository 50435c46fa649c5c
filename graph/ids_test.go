package graph

import (
	"encoding/base64"
	"testing"

	"invitations/db"
)

func TestGlobalIDs(t *testing.T) {
	id := db.NodeID(kindInvitation, 42)
	if id != "SW52aXRhdGlvbjo0Mg" { // base64url("Invitation:42"), unpadded: clients keep these
		t.Fatalf("NodeID(Invitation, 42) = %q", id)
	}
	if got := string(db.AppendNodeID([]byte("x"), kindMember, -1<<63)); got != "x"+base64.RawURLEncoding.EncodeToString([]byte("Member:-9223372036854775808")) {
		t.Fatalf("AppendNodeID = %q", got)
	}
	if got, ok := idOf(id, kindInvitation); !ok || got != 42 {
		t.Fatalf("round trip: %d %v", got, ok)
	}
	if _, ok := idOf(id, kindMember); ok {
		t.Fatal("an invitation id decoded as a member id")
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{"", "bogus!", enc("Invitation"), enc("Invitation:"), enc("Invitation:abc"),
		enc("Invitation:-1"), enc("Invitation:0"), enc("Invitation:007"), enc("Invitation:+7"),
		enc("Invitation:99999999999999999999"), enc("Invitation: 7"), "SW52aXRhdGlvbjo0=="} {
		if _, ok := idOf(bad, kindInvitation); ok {
			t.Errorf("%q decoded", bad)
		}
	}
}

func FuzzParseGlobalID(f *testing.F) {
	f.Add(db.NodeID(kindMember, 1))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		kind, id, ok := parseGlobalID(s)
		if ok && (id <= 0 || db.NodeID(kind, id) != s) {
			t.Fatalf("%q parsed to %s %d but does not round-trip", s, kind, id)
		}
	})
}
