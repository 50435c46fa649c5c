//go:build tools

// This file pins the code generators this module runs with `go generate`.
package main

import (
	_ "github.com/99designs/gqlgen"
)
