package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"invitations/playground"
)

// TestBrowserPlayground loads the embedded GraphiQL in headless Chromium (Debian's
// chromium package, driven by playwright-core from .ci/browser.mjs) and runs a query
// with a token, as a person would, then a subscription: the playground and the real
// server's /query on one origin, the page loading nothing from anywhere else.
func TestBrowserPlayground(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if inCI() {
			t.Fatalf("%s: %v (apt-get install chromium)", chromium, err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium, or set CHROMIUM)", chromium)
	}
	needCITool(t, "playwright-core")

	s := startServer(t, nil)
	ada, bob, cy := s.member("ada"), s.member("bob"), s.member("cy")
	adaID := s.memberID(ada, "ada")

	// The page and /query on one origin: the real server's own when it serves the
	// playground package (its assets under playground.Prefix), otherwise the package's
	// handler beside a reverse proxy to the real server.
	page := s.url + "/"
	if res, err := http.Get(s.url + playground.Prefix + "init.js"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			real, err := url.Parse(s.url)
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/query", httputil.NewSingleHostReverseProxy(real))
			pg := playground.Handler("Invitations", "/query")
			mux.Handle("/{$}", pg)
			mux.Handle(playground.Prefix, pg)
			front := httptest.NewServer(mux)
			defer front.Close()
			page = front.URL + "/"
			t.Log("the server does not serve the playground package: testing it beside a proxy to /query")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(".ci", "browser.mjs"), page, ada, adaID, bob, cy)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := cmd.CombinedOutput()
	t.Log(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("browser.mjs: %v", err)
	}
}
