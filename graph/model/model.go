// Package model holds the GraphQL types that are not repository types: the ones gqlgen
// generates (models_gen.go) and a few written by hand for lazy fields.
package model

import (
	"context"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"io"
	"time"

	"invitations/db"
)

// DateTime is the DateTime scalar: RFC 3339 in UTC, fractional seconds as needed.
type DateTime = time.Time

// MarshalDateTime writes t as an RFC 3339 string in UTC.
func MarshalDateTime(t time.Time) graphqlMarshaler {
	return marshalFunc(func(w io.Writer) { w.Write(AppendDateTime(nil, t)) })
}

// AppendDateTime appends t as a DateTime JSON value: RFC 3339 in UTC, with as many
// fractional digits as needed, quoted (its characters need no escape).
func AppendDateTime(b []byte, t time.Time) []byte {
	return append(t.UTC().AppendFormat(append(b, '"'), time.RFC3339Nano), '"')
}

// UnmarshalDateTime reads an RFC 3339 string (any offset).
func UnmarshalDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, badDateTime()
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UTC().Year() < 1 || t.UTC().Year() > 9999 {
		return time.Time{}, badDateTime()
	}
	return t.UTC(), nil
}

// badDateTime is a top-level BAD_USER_INPUT error: the value is the client's mistake.
func badDateTime() error {
	return &gqlerror.Error{
		Message:    "DateTime must be an RFC 3339 string such as 2026-01-02T15:04:05Z",
		Extensions: map[string]any{"code": "BAD_USER_INPUT"},
	}
}

type graphqlMarshaler = interface{ MarshalGQL(w io.Writer) }

type marshalFunc func(w io.Writer)

func (f marshalFunc) MarshalGQL(w io.Writer) { f(w) }

// InvitationConnection is a page of invitations; totalCount runs only when selected.
type InvitationConnection struct {
	Page  *db.Connection
	Edges []*InvitationEdge
}

// NewInvitationConnection wraps a repository page.
func NewInvitationConnection(c *db.Connection) *InvitationConnection {
	edges, backing := make([]*InvitationEdge, len(c.Invitations)), make([]InvitationEdge, len(c.Invitations))
	for i, inv := range c.Invitations {
		backing[i] = InvitationEdge{Node: inv}
		edges[i] = &backing[i]
	}
	return &InvitationConnection{Page: c, Edges: edges}
}

// Nodes are the page's invitations.
func (c *InvitationConnection) Nodes() []*db.Invitation { return c.Page.Invitations }

// PageInfo describes the page's position.
func (c *InvitationConnection) PageInfo() *PageInfo {
	return pageInfo(c.Page.HasNextPage, c.Page.HasPreviousPage, len(c.Page.Invitations), c.Page.Cursor)
}

// pageInfo is the Relay page information of a page of n items with these cursors.
func pageInfo(hasNext, hasPrevious bool, n int, cursor func(i int) string) *PageInfo {
	pi := &PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrevious}
	if n > 0 {
		start, end := cursor(0), cursor(n-1)
		pi.StartCursor, pi.EndCursor = &start, &end
	}
	return pi
}

// TotalCount counts the whole list.
func (c *InvitationConnection) TotalCount(ctx context.Context) (int, error) {
	return c.Page.TotalCount(ctx)
}

// InvitationEdge is an invitation in a list.
type InvitationEdge struct {
	Node *db.Invitation
}

// Cursor is the edge's opaque cursor, made only when a client asks for it.
func (e *InvitationEdge) Cursor() string { return db.InvitationCursor(e.Node) }

// WithdrawResult is the outcome for one selected id.
type WithdrawResult struct {
	InvitationID string
	Outcome      WithdrawOutcome
	Invitation   *db.Invitation
}

// Node is any object with a global ID: *db.Member or *db.Invitation.
type Node interface{}

// InvitationCounts is any statistics row: *db.Stats, *db.WeekStats, *db.NoteStats or
// *db.SourceStats.
type InvitationCounts interface{}

// NotificationConnection is a page of notifications.
type NotificationConnection struct {
	Page  *db.NotificationPage
	Edges []*NotificationEdge
}

// NewNotificationConnection wraps a repository page.
func NewNotificationConnection(p *db.NotificationPage) *NotificationConnection {
	edges, backing := make([]*NotificationEdge, len(p.Notifications)), make([]NotificationEdge, len(p.Notifications))
	for i, n := range p.Notifications {
		backing[i] = NotificationEdge{Node: n}
		edges[i] = &backing[i]
	}
	return &NotificationConnection{Page: p, Edges: edges}
}

// Nodes are the page's notifications.
func (c *NotificationConnection) Nodes() []*db.Notification { return c.Page.Notifications }

// PageInfo describes the page's position.
func (c *NotificationConnection) PageInfo() *PageInfo {
	return pageInfo(c.Page.HasNextPage, c.Page.HasPreviousPage, len(c.Page.Notifications), c.Page.Cursor)
}

// TotalCount counts the whole list.
func (c *NotificationConnection) TotalCount(ctx context.Context) (int, error) {
	return c.Page.TotalCount(ctx)
}

// UnreadCount counts the viewer's unread notifications.
func (c *NotificationConnection) UnreadCount(ctx context.Context) (int, error) {
	return c.Page.UnreadCount(ctx)
}

// NotificationEdge is a notification in a list.
type NotificationEdge struct {
	Node *db.Notification
}

// Cursor is the edge's opaque cursor, made only when a client asks for it.
func (e *NotificationEdge) Cursor() string { return db.NotificationCursor(e.Node) }
