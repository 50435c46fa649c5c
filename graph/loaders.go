package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"invitations/db"
	"invitations/graph/model"
)

// errNotFound is a loader's answer for a key with no value.
var errNotFound = errors.New("not found")

// loaders batch the per-object lookups of one request into one statement each, so a
// page of 100 invitations costs the same few statements as a page of 1. Each loader is
// made when a resolver first asks for it: most requests use one or none.
type loaders struct {
	store   *db.Store
	members lazy[*batchLoader[int64, *db.Member]]
	status  lazy[*batchLoader[int64, string]]
	// invitations and notifications are as the viewer sees them (nodes(ids:)).
	invitations   lazy[*batchLoader[int64, *db.Invitation]]
	notifications lazy[*batchLoader[int64, *db.Notification]]
}

// lazy is a value made once, by the first caller of get.
type lazy[T any] struct {
	once sync.Once
	v    T
}

func (z *lazy[T]) get(make func() T) T {
	z.once.Do(func() { z.v = make() })
	return z.v
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

func newLoaders(store *db.Store) *loaders { return &loaders{store: store} }

// statusLoader loads the viewer's connection status with members.
func (l *loaders) statusLoader() *batchLoader[int64, string] {
	return l.status.get(func() *batchLoader[int64, string] {
		return newBatchLoader(unhinted(asViewer(l.store.ConnectionStatuses)), nil)
	})
}

// membersLoader loads members, with their connection statuses when a caller selects
// connectionStatus: those statuses are asked for only once the members are back, by
// resolvers that wake one after the other, and would otherwise come in batches as
// unpredictable as the scheduler.
func (l *loaders) membersLoader() *batchLoader[int64, *db.Member] {
	return l.members.get(func() *batchLoader[int64, *db.Member] {
		statuses := asViewer(l.store.ConnectionStatuses)
		return newBatchLoader(func(ctx context.Context, ids []int64, withStatus bool) (map[int64]*db.Member, error) {
			ms, err := l.store.MembersByID(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make(map[int64]*db.Member, len(ms))
			found := make([]int64, 0, len(ms))
			for _, m := range ms {
				out[m.ID] = m
				found = append(found, m.ID)
			}
			if withStatus && len(found) > 0 {
				// On error, statuses are loaded (and the error reported) when resolved.
				if st, err := statuses(ctx, found); err == nil {
					l.statusLoader().prime(st)
				}
			}
			return out, nil
		}, selects("connectionStatus"))
	})
}

// invitationsLoader loads invitations as the viewer sees them.
func (l *loaders) invitationsLoader() *batchLoader[int64, *db.Invitation] {
	return l.invitations.get(func() *batchLoader[int64, *db.Invitation] {
		return newBatchLoader(unhinted(asViewer(l.store.InvitationsByID)), nil)
	})
}

// notificationsLoader loads notifications as the viewer sees them.
func (l *loaders) notificationsLoader() *batchLoader[int64, *db.Notification] {
	return l.notifications.get(func() *batchLoader[int64, *db.Notification] {
		return newBatchLoader(unhinted(asViewer(l.store.NotificationsByID)), nil)
	})
}

// unhinted is the fetch of a loader whose lookup takes no hint.
func unhinted[V any](fetch func(context.Context, []int64) (map[int64]V, error)) func(context.Context, []int64, bool) (map[int64]V, error) {
	return func(ctx context.Context, ids []int64, _ bool) (map[int64]V, error) { return fetch(ctx, ids) }
}

// asViewer turns a repository lookup relative to a member into one relative to the
// request's viewer.
func asViewer[V any](fetch func(ctx context.Context, viewer int64, ids []int64) (map[int64]V, error)) func(context.Context, []int64) (map[int64]V, error) {
	return func(ctx context.Context, ids []int64) (map[int64]V, error) {
		v, err := viewer(ctx)
		if err != nil {
			return nil, err
		}
		return fetch(ctx, v.Member.ID, ids)
	}
}

// selects returns a test of whether the field resolved in a context selects the
// Member field name (directly or in a fragment on Member or Node).
func selects(name string) func(context.Context) bool {
	return func(ctx context.Context) bool { return selected(ctx, name, memberImplementors...) }
}

// loadersFor returns the request's loaders, or fresh ones outside a request.
func (r *Resolver) loadersFor(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return newLoaders(r.Store)
}

// nodes resolves global IDs exactly as node does, in input order, nil for what the
// viewer may not see: every id joins its kind's loader batch before any result is
// awaited, so 100 ids cost one statement per kind, not one per id.
func (r *Resolver) nodes(ctx context.Context, ids []string) ([]model.Node, error) {
	l := r.loadersFor(ctx)
	thunks := make([]func() (model.Node, error), len(ids))
	for i, id := range ids {
		kind, n, ok := parseGlobalID(id)
		if !ok {
			continue
		}
		switch kind {
		case kindMember:
			thunks[i] = nodeThunk(l.membersLoader().LoadThunk(ctx, n))
		case kindInvitation:
			thunks[i] = nodeThunk(l.invitationsLoader().LoadThunk(ctx, n))
		case kindNotification:
			thunks[i] = nodeThunk(l.notificationsLoader().LoadThunk(ctx, n))
		}
	}
	out := make([]model.Node, len(ids))
	for i, thunk := range thunks {
		if thunk == nil {
			continue
		}
		node, err := thunk()
		if err != nil {
			return nil, err
		}
		out[i] = node
	}
	return out, nil
}

// nodeThunk turns a loader's thunk into a node's: not found is a nil Node, not a Node
// holding a nil pointer (the fetches put no nil values in their maps).
func nodeThunk[T any](thunk func() (T, error)) func() (model.Node, error) {
	return func() (model.Node, error) {
		v, err := thunk()
		if errors.Is(err, errNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

// A batch is fetched once no key has joined it for loaderIdle, or loaderMaxWait after
// its first key.
const (
	loaderIdle    = 2 * time.Millisecond
	loaderMaxWait = 25 * time.Millisecond
)

// batchLoader fetches the keys a request's resolvers ask for in batches, each key at
// most once per request. gqlgen resolves the items of a list in goroutines of their
// own, which reach the loader one after the other, further apart on a busy machine:
// a batch stays open while keys keep arriving (a fixed delay after the first key split
// a page of 100 invitations into several batches most of the time on a busy 2-CPU
// machine).
type batchLoader[K comparable, V any] struct {
	// fetch returns the values of keys (those it leaves out are not found); hinted
	// is true when hint was true for a caller of the batch.
	fetch func(ctx context.Context, keys []K, hinted bool) (map[K]V, error)
	hint  func(context.Context) bool // nil: never

	mu      sync.Mutex
	batches map[K]*loadBatch[K, V] // the batch that fetched or fetches each key
	open    *loadBatch[K, V]       // the batch new keys join; nil when none
}

type loadBatch[K comparable, V any] struct {
	keys          []K
	hinted        bool
	first, latest time.Time // when the first and the latest key joined
	vals          map[K]V
	err           error
	ready         chan struct{} // closed once vals and err are set
}

func newBatchLoader[K comparable, V any](fetch func(context.Context, []K, bool) (map[K]V, error), hint func(context.Context) bool) *batchLoader[K, V] {
	return &batchLoader[K, V]{fetch: fetch, hint: hint, batches: map[K]*loadBatch[K, V]{}}
}

// Load returns the value of key; errNotFound when there is none.
func (l *batchLoader[K, V]) Load(ctx context.Context, key K) (V, error) {
	return l.join(ctx, key).value(key)
}

// LoadThunk adds key to the open batch, unless it was asked for before, and returns
// a function that waits for its value.
func (l *batchLoader[K, V]) LoadThunk(ctx context.Context, key K) func() (V, error) {
	b := l.join(ctx, key)
	return func() (V, error) { return b.value(key) }
}

// join adds key to the open batch, unless it was asked for before, and returns the
// batch that fetches or fetched it.
func (l *batchLoader[K, V]) join(ctx context.Context, key K) *loadBatch[K, V] {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.batches[key]
	// The hint matters only to the open batch: a key preloaded, or in a batch already
	// fetched, skips it (each of a page's recipients would otherwise look through the
	// field's selections again).
	hinted := l.hint != nil && (!ok || b == l.open) && l.hint(ctx)
	if !ok {
		now := time.Now()
		if l.open == nil {
			l.open = &loadBatch[K, V]{first: now, ready: make(chan struct{})}
			go l.dispatch(ctx, l.open)
		}
		b = l.open
		b.keys = append(b.keys, key)
		b.latest = now
		l.batches[key] = b
	}
	if hinted && b == l.open {
		b.hinted = true
	}
	return b
}

// value waits for the batch and returns key's value; errNotFound when there is none.
func (b *loadBatch[K, V]) value(key K) (V, error) {
	<-b.ready
	var zero V
	if b.err != nil {
		return zero, b.err
	}
	v, ok := b.vals[key]
	if !ok {
		return zero, errNotFound
	}
	return v, nil
}

// preload fetches, at once and in one batch, the keys not asked for yet: for a caller
// that knows every key it will need (a list resolver holding its page), so that the
// resolvers asking later find their values instead of waiting for a batch to close.
func (l *batchLoader[K, V]) preload(ctx context.Context, keys []K, hinted bool) {
	l.mu.Lock()
	b := &loadBatch[K, V]{hinted: hinted, ready: make(chan struct{})}
	for _, k := range keys {
		if _, ok := l.batches[k]; !ok {
			b.keys = append(b.keys, k)
			l.batches[k] = b
		}
	}
	l.mu.Unlock()
	defer close(b.ready)
	if len(b.keys) > 0 {
		b.vals, b.err = l.fetch(ctx, b.keys, hinted)
	}
}

// prime records values fetched elsewhere, for keys not asked for yet.
func (l *batchLoader[K, V]) prime(vals map[K]V) {
	b := &loadBatch[K, V]{vals: vals, ready: make(chan struct{})}
	close(b.ready)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range vals {
		if _, ok := l.batches[k]; !ok {
			l.batches[k] = b
		}
	}
}

// dispatch closes b and fetches its keys, with the context of its first caller.
func (l *batchLoader[K, V]) dispatch(ctx context.Context, b *loadBatch[K, V]) {
	for wait := loaderIdle; ; {
		time.Sleep(wait)
		l.mu.Lock()
		now := time.Now()
		if now.Sub(b.latest) >= loaderIdle || now.Sub(b.first) >= loaderMaxWait {
			l.open = nil
			l.mu.Unlock()
			break
		}
		wait = min(b.latest.Add(loaderIdle).Sub(now), b.first.Add(loaderMaxWait).Sub(now))
		l.mu.Unlock()
	}
	defer close(b.ready)
	defer func() {
		if p := recover(); p != nil {
			b.vals, b.err = nil, fmt.Errorf("loader: panic during fetch: %v", p)
		}
	}()
	b.vals, b.err = l.fetch(ctx, b.keys, b.hinted)
}
