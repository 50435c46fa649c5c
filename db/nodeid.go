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
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(id, 10)))
}

// NodeID is the member's global id.
func (m *Member) NodeID() string { return NodeID("Member", m.ID) }

// NodeID is the invitation's global id.
func (inv *Invitation) NodeID() string { return NodeID("Invitation", inv.ID) }

// NodeID is the notification's global id.
func (n *Notification) NodeID() string { return NodeID("Notification", n.ID) }
