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

// connection wraps a page of invitations. When the client selected the invitations'
// sender or recipient, it loads those members for the whole page in one batch of the
// request's member loader, before the fields resolve.
func (r *Resolver) connection(ctx context.Context, c *db.Connection, err error) (*model.InvitationConnection, error) {
	if err != nil {
		return nil, err
	}
	if len(c.Invitations) > 0 {
		sender, recipient, status := memberSelections(ctx)
		var ids []int64
		for _, inv := range c.Invitations {
			if sender {
				ids = append(ids, inv.SenderID)
			}
			if recipient {
				ids = append(ids, inv.RecipientID)
			}
		}
		if len(ids) > 0 {
			r.loadersFor(ctx).members.preload(ctx, ids, status)
		}
	}
	return model.NewInvitationConnection(c), nil
}

// memberSelections reports whether the invitation connection being resolved selects
// its invitations' sender or recipient (through edges.node or nodes), and whether one
// of those selects connectionStatus.
func memberSelections(ctx context.Context) (sender, recipient, status bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return
	}
	oc := graphql.GetOperationContext(ctx)
	invitation := func(sel ast.SelectionSet) {
		for _, f := range graphql.CollectFields(oc, sel, invitationImplementors) {
			if f.Name != "sender" && f.Name != "recipient" {
				continue
			}
			sender, recipient = sender || f.Name == "sender", recipient || f.Name == "recipient"
			for _, m := range graphql.CollectFields(oc, f.Selections, memberImplementors) {
				status = status || m.Name == "connectionStatus"
			}
		}
	}
	for _, f := range graphql.CollectFields(oc, fc.Field.Selections, []string{"InvitationConnection"}) {
		switch f.Name {
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
	return
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
	m, err := r.loadersFor(ctx).members.Load(ctx, id)
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
