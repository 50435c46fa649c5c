// Command bare is the bench's reference server: a bare gqlgen + lib/pq server that
// answers the page cases' query (pendingInvitations with totalCount, each invitation's
// recipient) with the same SQL as the invitations server, and nothing else: no
// authentication (the token's subject is read, not verified), no limits, no privacy
// rules, no metrics, no request log. It is what the targets were measured on;
// the bench runs it beside the real server, on the same requests and data, so that the
// two ratios are comparable on the machine at hand.
//
// It is written the way gqlgen's documentation suggests: schema first, resolvers,
// gqlgen's default execution (a goroutine per list item and per resolver field), a
// per-request dataloader (dataloadgen) for the recipients, the LRU query cache, and
// database/sql prepared statements.
//
// Environment: DATABASE_URL, PORT, DB_MAX_CONNS (default 8).
package main

//go:generate go run github.com/99designs/gqlgen generate --config gqlgen.yml

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lib/pq"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"
)

// The statements are the invitations server's, spelled as it spells them, so that the
// bench's raw SQL (bench/sql/page.sql) is the bound of both servers.
const (
	viewerSQL  = `SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = $1`
	membersSQL = `SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE id = ANY($1)`
	pageSQL    = `SELECT i.id, i.sender_id, i.recipient_id, i.message, i.source, i.status, i.sent_at, i.responded_at, i.withdrawn_at, ` +
		`(SELECT count(*) FROM invitations i WHERE i.sent_at <= $1 AND i.sender_id = $2 AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > $3) AS total ` +
		`FROM invitations i WHERE i.sent_at <= $4 AND i.sender_id = $5 AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > $6 ` +
		`ORDER BY i.sent_at DESC, i.id DESC LIMIT 21`
)

// expiry is how long an invitation stays pending (the invitations server's default).
const expiry = 180 * 24 * time.Hour

type Invitation struct {
	ID          string
	RecipientID int64
	Message     *string
	SentAt      time.Time
}

type Member struct {
	ID       string
	Name     string
	Headline string
}

type InvitationConnection struct {
	Edges      []*InvitationEdge
	PageInfo   *PageInfo
	TotalCount int
}

type InvitationEdge struct {
	Cursor string
	Node   *Invitation
}

type PageInfo struct {
	HasNextPage bool
	EndCursor   *string
}

type Resolver struct {
	viewer, members, page *lazyStmt
}

// lazyStmt is a statement prepared on its first use (database/sql then prepares it on
// each pooled connection as it goes), so that it is parsed while pg_stat_statements
// watches: the bench compares the statements of one request with its raw SQL's.
type lazyStmt struct {
	db   *sql.DB
	text string
	once sync.Once
	stmt *sql.Stmt
	err  error
}

func (s *lazyStmt) get() (*sql.Stmt, error) {
	s.once.Do(func() { s.stmt, s.err = s.db.Prepare(s.text) })
	return s.stmt, s.err
}

func (r *Resolver) Query() QueryResolver           { return &queryResolver{r} }
func (r *Resolver) Invitation() InvitationResolver { return &invitationResolver{r} }

type queryResolver struct{ *Resolver }

func (r *queryResolver) PendingInvitations(ctx context.Context, filter *PendingInvitationFilter, first *int) (*InvitationConnection, error) {
	handle, _ := ctx.Value(handleKey{}).(string)
	var viewer int64
	var name, headline, plan, mhandle string
	var connections int
	var created time.Time
	viewerStmt, err := r.viewer.get()
	if err != nil {
		return nil, err
	}
	if err := viewerStmt.QueryRowContext(ctx, handle).Scan(&viewer, &mhandle, &name, &headline, &plan, &connections, &created); err != nil {
		return nil, errors.New("unknown viewer")
	}
	n := 20
	if first != nil {
		n = *first
	}
	if n != 20 {
		return nil, errors.New("the reference server serves pages of 20")
	}
	now := time.Now()
	older := now
	if filter != nil && filter.OlderThanDays != nil {
		older = now.Add(-time.Duration(*filter.OlderThanDays) * 24 * time.Hour)
	}
	after := now.Add(-expiry)
	page, err := r.page.get()
	if err != nil {
		return nil, err
	}
	rows, err := page.QueryContext(ctx, older, viewer, after, older, viewer, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	conn := &InvitationConnection{PageInfo: &PageInfo{}}
	for rows.Next() {
		var id, sender, recipient int64
		var message *string
		var source, status string
		var sent time.Time
		var responded, withdrawn *time.Time
		if err := rows.Scan(&id, &sender, &recipient, &message, &source, &status, &sent, &responded, &withdrawn, &conn.TotalCount); err != nil {
			return nil, err
		}
		if len(conn.Edges) == n {
			conn.PageInfo.HasNextPage = true
			break
		}
		cursor := base64.StdEncoding.EncodeToString([]byte(sent.Format(time.RFC3339Nano) + "|" + strconv.FormatInt(id, 10)))
		conn.Edges = append(conn.Edges, &InvitationEdge{Cursor: cursor, Node: &Invitation{
			ID: strconv.FormatInt(id, 10), RecipientID: recipient, Message: message, SentAt: sent,
		}})
		conn.PageInfo.EndCursor = &cursor
	}
	return conn, rows.Err()
}

type invitationResolver struct{ *Resolver }

func (r *invitationResolver) Recipient(ctx context.Context, obj *Invitation) (*Member, error) {
	return ctx.Value(loaderKey{}).(*dataloadgen.Loader[int64, *Member]).Load(ctx, obj.RecipientID)
}

// loadMembers is the batch function of the request's member loader.
func (r *Resolver) loadMembers(ctx context.Context, ids []int64) ([]*Member, []error) {
	out := make([]*Member, len(ids))
	errs := make([]error, len(ids))
	byID, err := r.membersByID(ctx, ids)
	for i, id := range ids {
		if err != nil {
			errs[i] = err
		} else if out[i] = byID[id]; out[i] == nil {
			errs[i] = fmt.Errorf("member %d not found", id)
		}
	}
	return out, errs
}

func (r *Resolver) membersByID(ctx context.Context, ids []int64) (map[int64]*Member, error) {
	members, err := r.members.get()
	if err != nil {
		return nil, err
	}
	rows, err := members.QueryContext(ctx, pq.Array(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[int64]*Member, len(ids))
	for rows.Next() {
		var id int64
		var m Member
		var handle, plan string
		var connections int
		var created time.Time
		if err := rows.Scan(&id, &handle, &m.Name, &m.Headline, &plan, &connections, &created); err != nil {
			return nil, err
		}
		m.ID = strconv.FormatInt(id, 10)
		byID[id] = &m
	}
	return byID, rows.Err()
}

type handleKey struct{}
type loaderKey struct{}

func main() {
	maxConns, _ := strconv.Atoi(os.Getenv("DB_MAX_CONNS"))
	if maxConns <= 0 {
		maxConns = 8
	}
	db, err := sql.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	r := &Resolver{viewer: &lazyStmt{db: db, text: viewerSQL}, members: &lazyStmt{db: db, text: membersSQL}, page: &lazyStmt{db: db, text: pageSQL}}

	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))

	parser := jwt.NewParser()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/query", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var claims jwt.RegisteredClaims
		if token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			parser.ParseUnverified(token, &claims)
		}
		ctx := context.WithValue(req.Context(), handleKey{}, claims.Subject)
		ctx = context.WithValue(ctx, loaderKey{}, dataloadgen.NewLoader(r.loadMembers, dataloadgen.WithWait(time.Millisecond)))
		srv.ServeHTTP(w, req.WithContext(ctx))
	}))

	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
