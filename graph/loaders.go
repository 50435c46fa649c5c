package graph

import (
	"context"
	"net/http"
	"time"

	"github.com/vikstrous/dataloadgen"

	"invitations/db"
)

// loaders batch the per-object lookups of one request into one statement each, so a
// page of 100 invitations costs the same few statements as a page of 1.
type loaders struct {
	members *dataloadgen.Loader[int64, *db.Member]
	status  *dataloadgen.Loader[int64, string]
}

type loadersKey struct{}

// LoaderMiddleware gives every request its own loaders (after authentication, as the
// connection-status loader is relative to the viewer).
func LoaderMiddleware(store *db.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), loadersKey{}, newLoaders(store))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func newLoaders(store *db.Store) *loaders {
	wait := dataloadgen.WithWait(time.Millisecond)
	return &loaders{
		members: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int64) (map[int64]*db.Member, error) {
			ms, err := store.MembersByID(ctx, ids)
			out := make(map[int64]*db.Member, len(ms))
			for _, m := range ms {
				out[m.ID] = m
			}
			return out, err
		}, wait),
		status: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int64) (map[int64]string, error) {
			v, err := viewer(ctx)
			if err != nil {
				return nil, err
			}
			return store.ConnectionStatuses(ctx, v.Member.ID, ids)
		}, wait),
	}
}

// loadersFor returns the request's loaders, or fresh ones outside a request.
func (r *Resolver) loadersFor(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return newLoaders(r.Store)
}
