package graph

import (
	"invitations/db"
	"invitations/graph/model"
)

// MaxComplexity is the most an operation may cost. A full page of 100 invitations with
// both members costs about 2,500; the limit leaves room for a few such lists.
const MaxComplexity = 10000

// mutationCost is the base cost of a write.
const mutationCost = 10

// Complexity prices fields so that the complexity limit sees what a query will really
// return: a list costs its page size times its children (first: 99999999 is priced,
// and refused, before any resolver runs), and writes cost more than reads.
func Complexity() ComplexityRoot {
	var c ComplexityRoot
	page := func(child int, first, last *int) int {
		n := db.DefaultPageSize
		if first != nil {
			n = *first
		}
		if last != nil {
			n = *last
		}
		n = min(max(n, 1), 1_000_000) // priced, not validated: bad sizes are refused later
		return 1 + n*child
	}
	c.Query.PendingInvitations = func(child int, _ *model.PendingInvitationFilter, _ *model.InvitationOrder, first *int, _ *string, last *int, _ *string) int {
		return page(child, first, last)
	}
	c.Query.ReceivedInvitations = func(child int, _ *model.InvitationOrder, first *int, _ *string, last *int, _ *string) int {
		return page(child, first, last)
	}
	c.Query.SentInvitations = func(child int, _ *model.SentInvitationFilter, _ *model.InvitationOrder, first *int, _ *string, last *int, _ *string) int {
		return page(child, first, last)
	}
	c.Query.Notifications = func(child int, _ *bool, first *int, _ *string, last *int, _ *string) int {
		return page(child, first, last)
	}
	c.Query.Nodes = func(child int, ids []string) int { return 1 + len(ids)*child }
	c.Query.InvitationStats = func(child int, _, _ *model.DateTime) int { return mutationCost + child }
	c.Query.NetworkInvitationStats = func(child int, _, _ *model.DateTime) int { return 10*mutationCost + child }
	c.Mutation.SendInvitation = func(child int, _ model.SendInvitationInput) int { return mutationCost + child }
	c.Mutation.WithdrawInvitation = func(child int, _ model.WithdrawInvitationInput) int { return mutationCost + child }
	c.Mutation.WithdrawSelected = func(child int, in model.WithdrawSelectedInput) int {
		return mutationCost + child + len(in.InvitationIds)
	}
	c.Mutation.WithdrawOlderThan = func(child int, _ model.WithdrawOlderThanInput) int { return mutationCost + child }
	c.Mutation.AcceptInvitation = func(child int, _ model.AcceptInvitationInput) int { return mutationCost + child }
	c.Mutation.IgnoreInvitation = func(child int, _ model.IgnoreInvitationInput) int { return mutationCost + child }
	c.Mutation.RemoveConnection = func(child int, _ model.RemoveConnectionInput) int { return mutationCost + child }
	c.Mutation.MarkNotificationsRead = func(child int, _ model.MarkNotificationsReadInput) int { return mutationCost + child }
	return c
}
