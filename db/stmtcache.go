package db

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/lib/pq"
)

// maxCachedStatements bounds the prepared statements one connection keeps. The
// repository has a few dozen statement texts; past the bound, statements run unprepared.
const maxCachedStatements = 200

// cachingConnector hands out lib/pq connections that prepare each statement text the
// first time it runs with arguments, and reuse the prepared statement afterwards.
//
// lib/pq runs a query with arguments as an unnamed statement: Parse and Describe, a
// round trip, then Bind and Execute, another, and PostgreSQL parses, analyses and plans
// the text every time. A prepared statement is one round trip (Bind, Execute) and
// PostgreSQL's plan cache skips the rest, as pgbench -M prepared does. Statements
// without arguments keep lib/pq's simple protocol (which allows several statements in
// one text). The cache lives and dies with its connection.
type cachingConnector struct{ driver.Connector }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	pc, ok := conn.(pqConn)
	if !ok {
		return conn, nil
	}
	return &cachingConn{pqConn: pc, stmts: make(map[string]driver.Stmt)}, nil
}

// pqConn is what lib/pq's connection implements and database/sql uses.
type pqConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// cachingConn is used by one goroutine at a time (database/sql's guarantee).
type cachingConn struct {
	pqConn
	stmts map[string]driver.Stmt
}

// stmt returns the connection's prepared statement for query, preparing it on first
// use; nil when the cache is full.
func (c *cachingConn) stmt(ctx context.Context, query string) (driver.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= maxCachedStatements {
		return nil, nil
	}
	st, err := c.pqConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) == 0 {
		return c.pqConn.QueryContext(ctx, query, args)
	}
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil { // the cache is full
		return c.pqConn.QueryContext(ctx, query, args)
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, args)
	c.forgetIfStale(query, err)
	return rows, err
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) == 0 {
		return c.pqConn.ExecContext(ctx, query, args)
	}
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil { // the cache is full
		return c.pqConn.ExecContext(ctx, query, args)
	}
	res, err := st.(driver.StmtExecContext).ExecContext(ctx, args)
	c.forgetIfStale(query, err)
	return res, err
}

// forgetIfStale drops a prepared statement the server no longer accepts (a schema
// change altered its result, or it is gone), so the next use prepares it again.
func (c *cachingConn) forgetIfStale(query string, err error) {
	if err == nil {
		return
	}
	var pqErr *pq.Error // on the heap (errors.As takes its address): only for an error
	if !errors.As(err, &pqErr) {
		return
	}
	// 0A000 feature_not_supported: "cached plan must not change result type";
	// 26000 invalid_sql_statement_name: the prepared statement does not exist.
	if pqErr.Code == "0A000" || pqErr.Code == "26000" {
		if st, ok := c.stmts[query]; ok {
			delete(c.stmts, query)
			st.Close()
		}
	}
}
