package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
)

// dataOnly wraps a gqlgen transport that answers a request with one JSON response
// (POST, GET) so that a response made of data alone, the common case, is written from
// the JSON gqlgen's executor already produced. gqlgen's transports encode the whole
// response with json.Marshal, which parses the data again to validate and compact it:
// about 5% of the server's CPU on a page of 20 invitations (bench case b).
//
// The bytes written are json.Marshal's: {"data":...}, the data as the executor wrote it
// (compact already). A response with errors, extensions or incremental parts, or whose
// data holds a character json.Marshal would escape (<, >, & and U+2028, U+2029), takes
// gqlgen's path. Status, headers and every other answer are the transport's own.
type dataOnly struct{ graphql.Transport }

func (t dataOnly) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	dw := &dataWriter{ResponseWriter: w}
	t.Transport.Do(dw, r, dataExecutor{GraphExecutor: exec, w: dw})
}

// dataExecutor hands a data-only response to its dataWriter, and the transport an empty
// response in its place.
type dataExecutor struct {
	graphql.GraphExecutor
	w *dataWriter
}

func (e dataExecutor) DispatchOperation(ctx context.Context, rc *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	next, ctx := e.GraphExecutor.DispatchOperation(ctx, rc)
	return func(ctx context.Context) *graphql.Response {
		resp := next(ctx)
		if resp == nil || !dataAlone(resp) || e.w.data != nil {
			return resp
		}
		e.w.data = resp.Data
		return &graphql.Response{}
	}, ctx
}

// dataAlone reports whether json.Marshal would write resp as {"data":DATA} with DATA
// unchanged.
func dataAlone(resp *graphql.Response) bool {
	if len(resp.Errors) > 0 || len(resp.Extensions) > 0 || resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil || len(resp.Data) == 0 {
		return false
	}
	d := resp.Data
	if bytes.IndexByte(d, '<') >= 0 || bytes.IndexByte(d, '>') >= 0 || bytes.IndexByte(d, '&') >= 0 {
		return false
	}
	return !bytes.Contains(d, lineSeparator) && !bytes.Contains(d, paragraphSeparator)
}

// The two characters json.Marshal escapes beside <, > and &, in UTF-8. (bytes.Contains
// finds them fast; bytes.ContainsAny with non-ASCII characters decodes every rune.)
var lineSeparator, paragraphSeparator = []byte("\u2028"), []byte("\u2029")

// dataOnlyWrites counts the responses written from the executor's JSON (tests check
// that the server's answers take this path).
var dataOnlyWrites atomic.Int64

// dataWriter writes the data it was handed in place of the transport's encoding of the
// empty response that stands for it ({"data":null}).
type dataWriter struct {
	http.ResponseWriter
	data json.RawMessage
}

func (w *dataWriter) Write(b []byte) (int, error) {
	if w.data == nil {
		return w.ResponseWriter.Write(b)
	}
	data := w.data
	w.data = nil
	dataOnlyWrites.Add(1)
	for _, part := range [][]byte{[]byte(`{"data":`), data, []byte(`}`)} {
		if _, err := w.ResponseWriter.Write(part); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *dataWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
