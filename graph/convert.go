package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
	"invitations/graph/model"
)

// page is a list's page arguments; when the client selected totalCount, the repository
// counts in the page's statement.
func page(ctx context.Context, first *int, after *string, last *int, before *string) db.Page {
	return db.Page{First: first, After: after, Last: last, Before: before, Count: selected(ctx, "totalCount")}
}

// listSelections is what a client selected of an invitation connection being resolved,
// besides the invitations: the statement that reads the page reads these too.
type listSelections struct {
	count             bool // totalCount
	sender, recipient bool // the invitations' sender or recipient (edges.node or nodes)
	status            bool // connectionStatus of a sender or recipient
	// viewerSends or not: every invitation of the list has the viewer as its sender,
	// or else as its recipient. That member is the request's viewer, read already.
	viewerSends bool
}

// selections reads listSelections off the invitation connection being resolved (@skip
// and @include applied): totalCount, the invitations' sender or recipient (through
// edges.node or nodes), and whether one of those selects connectionStatus.
func selections(ctx context.Context, viewerSends bool) (s listSelections) {
	s.viewerSends = viewerSends
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return s
	}
	oc := graphql.GetOperationContext(ctx)
	invitation := func(sel ast.SelectionSet) {
		for _, f := range graphql.CollectFields(oc, sel, invitationImplementors) {
			if f.Name != "sender" && f.Name != "recipient" {
				continue
			}
			s.sender, s.recipient = s.sender || f.Name == "sender", s.recipient || f.Name == "recipient"
			for _, m := range graphql.CollectFields(oc, f.Selections, memberImplementors) {
				s.status = s.status || m.Name == "connectionStatus"
			}
		}
	}
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, []string{"InvitationConnection"}) {
		switch f.Name {
		case "totalCount":
			s.count = true
		case "nodes":
			invitation(f.Selections)
		case "edges":
			for _, e := range graphql.CollectFields(oc, f.Selections, []string{"InvitationEdge"}) {
				if e.Name == "node" {
					invitation(e.Selections)
				}
			}
		}
	}
	return s
}

// page is an invitation list's page arguments: the repository counts in the page's
// statement, and joins the senders or recipients other than the viewer, when the
// client selected them.
func (s listSelections) page(first *int, after *string, last *int, before *string) db.Page {
	return db.Page{First: first, After: after, Last: last, Before: before, Count: s.count,
		Senders: s.sender && !s.viewerSends, Recipients: s.recipient && s.viewerSends}
}

// selected reports whether the current field's selection set (@skip and @include
// applied) asks for the child field name, directly or in fragments on one of types
// (by default the field's own type).
func selected(ctx context.Context, name string, types ...string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil || !graphql.HasOperationContext(ctx) {
		return false
	}
	if len(types) == 0 {
		types = []string{fc.Field.Definition.Type.Name()}
	}
	for _, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), fc.Field.Selections, types) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// order maps the GraphQL order; newest first when omitted.
func order(o *model.InvitationOrder) db.Order {
	return db.Order{Desc: o == nil || o.Direction == model.OrderDirectionDesc}
}

func pendingFilter(f *model.PendingInvitationFilter) db.PendingFilter {
	if f == nil {
		return db.PendingFilter{}
	}
	return db.PendingFilter{
		OlderThanDays: f.OlderThanDays,
		NewerThanDays: f.NewerThanDays,
		SentBefore:    f.SentBefore,
		SentAfter:     f.SentAfter,
	}
}

func sentFilter(f *model.SentInvitationFilter) db.SentFilter {
	if f == nil {
		return db.SentFilter{}
	}
	out := db.SentFilter{SentBefore: f.SentBefore, SentAfter: f.SentAfter}
	if f.Status != nil {
		out.Statuses = make([]string, len(f.Status))
		for i, s := range f.Status {
			out.Statuses[i] = string(s)
		}
	}
	return out
}

// connection wraps a page of invitations. The members it selected came with the page
// (or are the viewer): they are handed to the request's member loader, so that the
// invitations' sender and recipient fields find them there; connection statuses, when
// selected, are loaded for the whole page in one batch, before the fields resolve.
func (r *Resolver) connection(ctx context.Context, v *Viewer, sel listSelections, c *db.Connection, err error) (*model.InvitationConnection, error) {
	if err != nil {
		return nil, err
	}
	if len(c.Invitations) > 0 && (sel.sender || sel.recipient) {
		members := make(map[int64]*db.Member, len(c.Members)+1)
		members[v.Member.ID] = v.Member
		for _, m := range c.Members {
			members[m.ID] = m
		}
		l := r.loadersFor(ctx)
		l.membersLoader().prime(members)
		if sel.status {
			ids := make([]int64, 0, len(members))
			for id := range members {
				ids = append(ids, id)
			}
			l.statusLoader().preload(ctx, ids, false)
		}
	}
	return model.NewInvitationConnection(c), nil
}

// node resolves a global ID to what the viewer may see, or nil.
func (r *Resolver) node(ctx context.Context, v *Viewer, id string) (model.Node, error) {
	kind, n, ok := parseGlobalID(id)
	if !ok {
		return nil, nil
	}
	switch kind {
	case kindMember:
		m, err := r.member(ctx, n)
		if err != nil || m == nil {
			return nil, err
		}
		return m, nil
	case kindInvitation:
		inv, err := r.Store.Invitation(ctx, v.Member.ID, n)
		if err != nil || inv == nil {
			return nil, err
		}
		return inv, nil
	case kindNotification:
		nt, err := r.Store.Notification(ctx, v.Member.ID, n)
		if err != nil || nt == nil {
			return nil, err
		}
		return nt, nil
	}
	return nil, nil
}

// withdrawResults maps repository results to the payload's, naming each id as given.
func withdrawResults(ids []string, results []db.WithdrawResult) []*model.WithdrawResult {
	out := make([]*model.WithdrawResult, len(results))
	for i, r := range results {
		out[i] = &model.WithdrawResult{
			InvitationID: ids[r.Index],
			Outcome:      model.WithdrawOutcome(r.Outcome),
			Invitation:   r.Invitation,
		}
	}
	return out
}

// decodeInvitationIDs decodes selected ids; Found marks the ones that are invitation ids.
func decodeInvitationIDs(ids []string) ([]int64, []bool) {
	out, found := make([]int64, len(ids)), make([]bool, len(ids))
	for i, s := range ids {
		out[i], found[i] = idOf(s, kindInvitation)
	}
	return out, found
}

// member loads a member through the request's loader; nil when there is none.
func (r *Resolver) member(ctx context.Context, id int64) (*db.Member, error) {
	m, err := r.loadersFor(ctx).membersLoader().Load(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return m, err
}

// viewerQuota is the viewer's quota, for the payloads' quota fields.
func (r *Resolver) viewerQuota(ctx context.Context) (*db.Quota, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	return r.Store.Quota(ctx, v.Member.ID)
}
