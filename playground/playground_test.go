package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var reference = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// TestPlaygroundPageAndAssets: the page and every file it references are served, with
// their content types, and the page references nothing outside its origin.
func TestPlaygroundPageAndAssets(t *testing.T) {
	h := Handler("Invitations", "/query")
	res := get(t, h, "/", nil)
	if res.Code != 200 || res.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("page: %d %q", res.Code, res.Header().Get("Content-Type"))
	}
	if got := res.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Fatalf("CSP %q", got)
	}
	if res.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatal("page without nosniff")
	}
	html := res.Body.String()
	if strings.Contains(html, "http://") || strings.Contains(html, "https://") || strings.Contains(html, "//cdn") {
		t.Fatalf("the page references an external URL:\n%s", html)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "style=") {
		t.Fatal("inline script or style: the CSP would block it")
	}
	if !strings.Contains(html, `<title>Invitations</title>`) || !strings.Contains(html, `data-endpoint="/query"`) {
		t.Fatalf("title or endpoint missing:\n%s", html)
	}
	var refs [][]string
	for _, ref := range reference.FindAllStringSubmatch(html, -1) {
		if ref[1] != "data:," { // the empty favicon: no request for /favicon.ico
			refs = append(refs, ref)
		}
	}
	if len(refs) != 6 {
		t.Fatalf("want 4 scripts and 2 stylesheets, got %q", refs)
	}
	for _, ref := range refs {
		url := ref[1]
		if !strings.HasPrefix(url, Prefix) {
			t.Errorf("%s is not under %s", url, Prefix)
			continue
		}
		res := get(t, h, url, nil)
		want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(url)]
		if res.Code != 200 || res.Header().Get("Content-Type") != want || res.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %q", url, res.Code, res.Header().Get("Content-Type"))
		}
		if res.Body.Len() == 0 || res.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: %d bytes, encoding %q without Accept-Encoding", url, res.Body.Len(), res.Header().Get("Content-Encoding"))
		}
	}
	// Our own files load nothing from elsewhere either (the vendored ones mention URLs
	// in comments and messages; what they may load is bounded by the CSP).
	for _, name := range []string{"init.js", "playground.css"} {
		body := get(t, h, Prefix+name, nil).Body.String()
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s references an external URL", name)
		}
	}
	// GraphiQL's stylesheet embeds its fonts and icons: no url() but data: ones, no @import.
	css := get(t, h, Prefix+"graphiql.min.css", nil).Body.String()
	for _, m := range regexp.MustCompile(`url\(\s*['"]?([^'")]{0,16})`).FindAllStringSubmatch(css, -1) {
		if !strings.HasPrefix(m[1], "data:") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("graphiql.min.css loads url(%s…)", m[1])
		}
	}
	if strings.Contains(css, "@import") {
		t.Error("graphiql.min.css has an @import")
	}
}

func TestPlaygroundCachingCompressionAndErrors(t *testing.T) {
	h := Handler("Invitations", "/query")
	plain := get(t, h, Prefix+"graphiql.min.js", nil)
	zipped := get(t, h, Prefix+"graphiql.min.js", map[string]string{"Accept-Encoding": "br, gzip"})
	if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Body.Len() >= plain.Body.Len()/2 {
		t.Fatalf("gzip: %q, %d of %d bytes", zipped.Header().Get("Content-Encoding"), zipped.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Fatal("the gzip body differs")
	}
	if get(t, h, Prefix+"graphiql.min.js", map[string]string{"Accept-Encoding": "gzip;q=0"}).Header().Get("Content-Encoding") != "" {
		t.Fatal("gzip sent although refused")
	}
	etag := plain.Header().Get("ETag")
	if etag == "" || get(t, h, Prefix+"graphiql.min.js", map[string]string{"If-None-Match": etag}).Code != http.StatusNotModified {
		t.Fatalf("no 304 for ETag %q", etag)
	}
	for _, target := range []string{"/nope", Prefix, Prefix + "nope.js", Prefix + "../index.html", "/index.html", Prefix + "assets/graphiql.min.js"} {
		if res := get(t, h, target, nil); res.Code != 404 {
			t.Errorf("%s: %d", target, res.Code)
		}
	}
	req := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
	// Title and endpoint are escaped.
	html := get(t, Handler(`<b>"x"</b>`, `/q"><script>`), "/", nil).Body.String()
	if strings.Contains(html, "<b>") || strings.Contains(html, `"><script>`) {
		t.Fatalf("not escaped:\n%s", html)
	}
}

// TestPlaygroundVendoredAssets: assets/ is what vendor.mjs copies for the versions
// package.json and package-lock.json pin, and stays a few MB.
func TestPlaygroundVendoredAssets(t *testing.T) {
	var manifest struct {
		Packages map[string]string
		Files    map[string]struct{ From, Sha256 string }
	}
	var pkg struct{ Dependencies map[string]string }
	var lock struct {
		Packages map[string]struct {
			Version, Resolved, Integrity string
		}
	}
	for file, v := range map[string]any{"assets/MANIFEST.json": &manifest, "package.json": &pkg, "package-lock.json": &lock} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if len(pkg.Dependencies) == 0 {
		t.Fatal("package.json pins nothing")
	}
	for name, version := range pkg.Dependencies {
		if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(version) {
			t.Errorf("package.json: %s %q is not an exact version", name, version)
		}
		locked := lock.Packages["node_modules/"+name]
		if locked.Version != version || locked.Integrity == "" {
			t.Errorf("package-lock.json has %s %+v, package.json pins %s", name, locked, version)
		}
		if manifest.Packages[name] != version {
			t.Errorf("assets/ were copied from %s %q, package.json pins %s: run npm --prefix playground run vendor", name, manifest.Packages[name], version)
		}
	}
	total := 0
	entries, _ := os.ReadDir("assets")
	for _, e := range entries {
		if e.Name() == "MANIFEST.json" {
			continue
		}
		b, err := os.ReadFile("assets/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		sum := sha256.Sum256(b)
		if f, ok := manifest.Files[e.Name()]; !ok || f.Sha256 != hex.EncodeToString(sum[:]) {
			t.Errorf("assets/%s is not the copy MANIFEST.json records", e.Name())
		}
		if _, clash := os.Stat("static/" + e.Name()); clash == nil {
			t.Errorf("static/%s and assets/%s share a name", e.Name(), e.Name())
		}
	}
	if len(entries) != len(manifest.Files)+1 {
		t.Errorf("assets/ has %d files, MANIFEST.json lists %d", len(entries)-1, len(manifest.Files))
	}
	if total > 4<<20 {
		t.Errorf("assets/ is %d bytes", total)
	}
	t.Logf("assets/: %d bytes, %v", total, manifest.Packages)
}
