// Package playground serves GraphiQL from the binary: the page, GraphiQL, React and
// ReactDOM are embedded, so the playground works offline and loads nothing from a CDN.
//
// The vendored builds in assets/ are pinned in package.json and package-lock.json and
// copied from npm by `npm --prefix playground run vendor` (vendor.mjs); assets/MANIFEST.json
// records their versions and checksums. static/ holds this package's own script and
// stylesheet, index.html the page.
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Prefix is the path under which Handler serves the playground's scripts and
// stylesheets; the page itself is at "/". Route both to Handler.
const Prefix = "/playground/"

// ContentSecurityPolicy is sent with the page: everything from the page's own origin
// only. Scripts are files (no inline script, no eval); GraphiQL's stylesheet embeds its
// fonts and icons as data: URLs. connect-src 'self' covers the endpoint over HTTP and
// WebSocket (same origin), so the endpoint must be on the page's origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed index.html static assets
var files embed.FS

var page = template.Must(template.ParseFS(files, "index.html"))

// asset is one file served under Prefix.
type asset struct {
	contentType string
	body, gz    []byte // gz: gzip-compressed body, nil when it does not pay
	etag        string
}

// loadAssets reads the files served under Prefix, by name: static/ and assets/
// together (the names are distinct; playground_test.go checks it). Once, at the first
// request, so that a binary that serves no playground pays nothing.
var loadAssets = sync.OnceValue(func() map[string]*asset {
	m := map[string]*asset{}
	for _, dir := range []string{"static", "assets"} {
		entries, err := fs.ReadDir(files, dir)
		if err != nil {
			panic(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			body, err := files.ReadFile(dir + "/" + e.Name())
			if err != nil {
				panic(err)
			}
			sum := sha256.Sum256(body)
			a := &asset{contentType: contentType(e.Name()), body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if buf.Len() < len(body)*9/10 {
				a.gz = buf.Bytes()
			}
			m[e.Name()] = a
		}
	}
	return m
})

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".json":
		return "application/json"
	default:
		return "text/plain; charset=utf-8"
	}
}

// Handler serves the GraphiQL page at "/" (title as its title, endpoint as the URL
// GraphQL requests go to: a path on the same origin, such as "/query") and its assets
// under Prefix. Other paths answer 404. Route "/" (exactly) and Prefix to it.
func Handler(title, endpoint string) http.Handler {
	var buf bytes.Buffer
	if err := page.Execute(&buf, struct{ Title, Endpoint string }{title, endpoint}); err != nil {
		panic(err)
	}
	html := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Content-Security-Policy", ContentSecurityPolicy)
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cache-Control", "no-cache")
			h.Set("Content-Length", strconv.Itoa(len(html)))
			w.Write(html)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		a := loadAssets()[name]
		if !ok || a == nil {
			http.NotFound(w, r)
			return
		}
		// Revalidated on every load (the files change with a vendor refresh), then
		// answered 304 by ETag.
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Add("Vary", "Accept-Encoding")
		if match := r.Header.Get("If-None-Match"); match != "" && (match == "*" || strings.Contains(match, a.etag)) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.body
		if a.gz != nil && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip (not with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
