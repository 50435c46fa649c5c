package graph

import (
	"context"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"invitations/db"
)

// stats answers invitationStats (the viewer's) and networkInvitationStats (everyone's,
// admins only: FORBIDDEN otherwise).
func (r *Resolver) stats(ctx context.Context, network bool, after, before *time.Time) (*db.Stats, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if !network {
		var opts []db.StatsOption
		if !selected(ctx, "byWeek") {
			opts = append(opts, db.WithoutWeeks)
		}
		return r.Store.InvitationStats(ctx, &v.Member.ID, after, before, opts...)
	}
	if !v.Admin {
		return nil, &gqlerror.Error{Message: "network-wide analytics are for admins", Extensions: map[string]any{"code": "FORBIDDEN"}}
	}
	return r.Store.InvitationStats(ctx, nil, after, before)
}
