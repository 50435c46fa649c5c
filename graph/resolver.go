// Package graph is the GraphQL layer: gqlgen's generated executor, thin resolvers that
// read the viewer from the context, call one repository method and map the result, and
// the helpers beside them (ids, errors, loaders, authentication).
package graph

//go:generate go run github.com/99designs/gqlgen generate
//go:generate go run ../internal/inorder generated.go InvitationEdge Invitation InvitationNoteStats InvitationSourceStats InvitationWeekStats UserError WithdrawResult:invitation
//go:generate go run ../internal/leaffields generated.go Invitation.id Invitation.sentAt Invitation.message Member.id Member.name Member.headline InvitationEdge.cursor PageInfo.hasNextPage InvitationEdge.node Invitation.recipient InvitationConnection.edges InvitationConnection.pageInfo InvitationConnection.totalCount
//go:generate go run ../internal/marshallers generated.go

import (
	"log/slog"

	"invitations/db"
)

// Resolver holds the resolvers' dependencies.
type Resolver struct {
	Store  *db.Store
	Logger *slog.Logger
	Events *db.Events // the subscriptions' event source; nil: subscriptions fail
	// OnUserError, if set, is called with the code of every userError a mutation
	// returns (the metrics count refusals by code).
	OnUserError func(code string)
}
