package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
)

// checkBody reads a POST body up to maxBodyBytes and refuses, with a GraphQL-shaped
// error and without echoing it, a body that is not application/json (415: forms,
// multipart and text/plain are what a cross-site page can send without a preflight),
// larger (413), not JSON, or a batch (an array of operations, which this server does
// not run) (400). Refusals are counted in m.
func checkBody(m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
			refuseRequest(w, m, http.StatusUnsupportedMediaType, "the request body must be a GraphQL request in JSON, sent as Content-Type: application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			refuseRequest(w, m, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxBodyBytes))
			return
		case err != nil:
			refuseRequest(w, m, http.StatusBadRequest, "the request body could not be read")
			return
		case !json.Valid(body):
			refuseRequest(w, m, http.StatusBadRequest, "the request body is not valid JSON")
			return
		case len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '[':
			refuseRequest(w, m, http.StatusBadRequest, "batched requests are not supported: send one operation per request")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// codedGET answers gqlgen's refusals of a GET request as checkBody answers POST's: a
// GraphQL-shaped error with extensions.code BAD_USER_INPUT. gqlgen writes them without
// a code: 406 for a mutation or subscription, 400 for a query string, variables or
// extensions it cannot decode. A mutation gets 405 and "Allow: POST" instead of 406,
// as the GraphQL-over-HTTP specification asks. Errors that carry a code already (a
// query that does not parse, with Accept: application/graphql-response+json) pass.
type codedGET struct {
	graphql.Transport
	m *metrics
}

func (t codedGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	rw := &refusalWriter{ResponseWriter: w}
	t.Transport.Do(rw, r, exec)
	if rw.status == 0 {
		return
	}
	var resp struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	switch {
	case json.Unmarshal(rw.body.Bytes(), &resp) != nil || len(resp.Errors) == 0 || resp.Errors[0].Extensions["code"] != nil:
		w.WriteHeader(rw.status)
		w.Write(rw.body.Bytes())
	case rw.status == http.StatusNotAcceptable:
		w.Header().Set("Allow", http.MethodPost)
		refuseRequest(w, t.m, http.StatusMethodNotAllowed, "GET requests run queries only: send mutations and subscriptions by POST")
	default:
		refuseRequest(w, t.m, rw.status, resp.Errors[0].Message)
	}
}

// refusalWriter holds back a 400 or 406 response and its body, and passes any other.
type refusalWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *refusalWriter) WriteHeader(status int) {
	if status == http.StatusBadRequest || status == http.StatusNotAcceptable {
		w.status = status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		return w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refuseRequest answers a request that never reached GraphQL, and counts it in m.
func refuseRequest(w http.ResponseWriter, m *metrics, status int, message string) {
	m.errorCode("BAD_USER_INPUT")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": message, "extensions": map[string]any{"code": "BAD_USER_INPUT"}}},
	})
}
