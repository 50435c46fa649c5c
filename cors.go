package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/cors"
)

// Cross-origin access for browsers. Single-page apps on the origins of
// CORS_ALLOWED_ORIGINS may call /query; no other origin gets an
// Access-Control-Allow-Origin header, so browsers keep the response from its scripts
// and never send it a preflighted request (every request with a JSON body or an
// Authorization header is preflighted). Tokens travel in the Authorization header,
// never in cookies, so credentials are not allowed.

// corsAllowedHeaders are the request headers a cross-origin page may send: the
// credentials, the JSON content type, a request id, and the client identification
// headers Apollo Client sends (harmless: they only name the client).
var corsAllowedHeaders = []string{
	"Authorization", "Content-Type", "Accept", "X-Request-ID",
	"apollographql-client-name", "apollographql-client-version",
	"apollo-require-preflight", "x-apollo-operation-name",
}

// corsHandler applies the allow-list to next. With no origins, no cross-origin request
// is allowed at all (preflights are answered without any Access-Control header and go
// no further).
func corsHandler(origins []string, next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[o] = true
	}
	return cors.New(cors.Options{
		// A function rather than AllowedOrigins: an empty AllowedOrigins would mean "*",
		// and the matching here is exact (no wildcards).
		AllowOriginFunc: func(origin string) bool { return allowed[origin] },
		AllowedMethods:  []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders:  corsAllowedHeaders,
		ExposedHeaders:  []string{"X-Request-ID", "Retry-After"},
		MaxAge:          600, // seconds a browser may cache a preflight's answer
	}).Handler(next)
}

// parseOrigins reads CORS_ALLOWED_ORIGINS: comma-separated exact origins
// (scheme://host[:port], http or https), returned in their lowercase serialization.
func parseOrigins(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
			u.Hostname() == "" || strings.ContainsAny(u.Hostname(), "*?[]\\ %") {
			return nil, fmt.Errorf("CORS_ALLOWED_ORIGINS must be a comma-separated list of exact origins such as https://app.example.com (scheme, host and optional port; no path or wildcard), got %q", f)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}
