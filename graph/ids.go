package graph

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Kinds of global IDs.
const (
	kindMember       = "Member"
	kindInvitation   = "Invitation"
	kindNotification = "Notification"
)

// parseGlobalID returns the kind and database id inside a global ID (db.NodeID makes
// them). ok is false for anything malformed; callers treat that exactly like an id
// that does not exist.
func parseGlobalID(s string) (kind string, id int64, ok bool) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	// The decoder skips newlines: only the canonical spelling of an id is that id.
	if err != nil || base64.RawURLEncoding.EncodeToString(raw) != s {
		return "", 0, false
	}
	kind, num, found := strings.Cut(string(raw), ":")
	if !found {
		return "", 0, false
	}
	id, err = strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != num {
		return "", 0, false
	}
	return kind, id, true
}

// idOf returns the database id inside a global ID of the wanted kind.
func idOf(s, kind string) (int64, bool) {
	k, id, ok := parseGlobalID(s)
	if !ok || k != kind {
		return 0, false
	}
	return id, true
}
