package graph

import (
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/vektah/gqlparser/v2/gqlerror"

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

// ComplexityLimit refuses an operation that costs more than Limit, as gqlgen's
// extension.FixedComplexityLimit does: the same computation (complexity.Calculate with
// the schema's Complexity), the same statistics under the same name, the same error and
// code. It also remembers what recent operations cost, by query text, operation name
// and variables, which determine the cost: the computation coerces every field's
// arguments again, about 6% of the server's CPU for a small page (BenchmarkLightPage),
// and clients send the same few queries with the same variables over and over.
// Queries or variables too large to be worth keeping are computed every time.
type ComplexityLimit struct {
	Limit int
	es    graphql.ExecutableSchema
	costs *lru.Cache[complexityKey, int]
}

type complexityKey struct{ query, operation, variables string }

// Sizes beyond which an operation's cost is not kept, and how many are kept: at most
// about 2.5 MB, however varied the operations.
const (
	maxKeptQuery     = 4 << 10
	maxKeptVariables = 1 << 10
	keptCosts        = 500
)

// NewComplexityLimit returns the extension for gqlgen's handler.Use.
func NewComplexityLimit(limit int) *ComplexityLimit {
	costs, err := lru.New[complexityKey, int](keptCosts)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &ComplexityLimit{Limit: limit, costs: costs}
}

var _ interface {
	graphql.OperationContextMutator
	graphql.HandlerExtension
} = &ComplexityLimit{}

// ExtensionName is gqlgen's, so that extension.GetComplexityStats finds the statistics.
func (c *ComplexityLimit) ExtensionName() string { return "ComplexityLimit" }

func (c *ComplexityLimit) Validate(es graphql.ExecutableSchema) error {
	c.es = es
	return nil
}

func (c *ComplexityLimit) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	cost := c.cost(ctx, opCtx)
	opCtx.Stats.SetExtension(c.ExtensionName(), &extension.ComplexityStats{Complexity: cost, ComplexityLimit: c.Limit})
	if cost > c.Limit {
		err := gqlerror.Errorf("operation has complexity %d, which exceeds the limit of %d", cost, c.Limit)
		errcode.Set(err, "COMPLEXITY_LIMIT_EXCEEDED")
		return err
	}
	return nil
}

// cost is the operation's complexity, computed or remembered.
func (c *ComplexityLimit) cost(ctx context.Context, opCtx *graphql.OperationContext) int {
	calculate := func() int {
		return complexity.Calculate(ctx, c.es, opCtx.Doc.Operations.ForName(opCtx.OperationName), opCtx.Variables)
	}
	if opCtx.RawQuery == "" || len(opCtx.RawQuery) > maxKeptQuery {
		return calculate()
	}
	var vars []byte
	if len(opCtx.Variables) > 0 {
		var err error
		// Map keys are sorted: equal variables give equal text.
		if vars, err = json.Marshal(opCtx.Variables); err != nil || len(vars) > maxKeptVariables {
			return calculate()
		}
	}
	key := complexityKey{opCtx.RawQuery, opCtx.OperationName, string(vars)}
	if cost, ok := c.costs.Get(key); ok {
		return cost
	}
	cost := calculate()
	c.costs.Add(key, cost)
	return cost
}
