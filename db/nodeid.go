package db

import (
	"encoding/base64"
	"strconv"
)

// NodeID is the opaque global (Relay) id of an object: base64url without padding of
// "Kind:id". The GraphQL layer decodes ids (graph/ids.go); the types encode their own
// with a plain method, which gqlgen calls inline, where a resolver would cost each id
// of a response a goroutine.
func NodeID(kind string, id int64) string {
	return string(AppendNodeID(nil, kind, id))
}

// AppendNodeID appends the global id NodeID(kind, id) to b.
func AppendNodeID(b []byte, kind string, id int64) []byte {
	var raw [48]byte
	r := append(append(raw[:0], kind...), ':')
	return base64.RawURLEncoding.AppendEncode(b, strconv.AppendInt(r, id, 10))
}

// NodeID is the member's global id.
func (m *Member) NodeID() string { return NodeID("Member", m.ID) }

// NodeID is the invitation's global id.
func (inv *Invitation) NodeID() string { return NodeID("Invitation", inv.ID) }

// NodeID is the notification's global id.
func (n *Notification) NodeID() string { return NodeID("Notification", n.ID) }

// AppendNodeID appends the member's global id to b.
func (m *Member) AppendNodeID(b []byte) []byte { return AppendNodeID(b, "Member", m.ID) }

// AppendNodeID appends the invitation's global id to b.
func (inv *Invitation) AppendNodeID(b []byte) []byte { return AppendNodeID(b, "Invitation", inv.ID) }

// AppendNodeID appends the notification's global id to b.
func (n *Notification) AppendNodeID(b []byte) []byte { return AppendNodeID(b, "Notification", n.ID) }
