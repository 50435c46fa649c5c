// Command inorder rewrites gqlgen's generated executor so that the lists it names are
// marshalled one item after the other on the resolving goroutine, instead of one
// goroutine per item (graphql.MarshalSliceConcurrently).
//
// gqlgen starts a goroutine for every item of every list of objects, whatever the
// items' fields do. For lists whose items resolve without waiting on anything (their
// fields are plain values, or were preloaded by the list's resolver), those goroutines
// buy nothing and cost about a tenth of the server's CPU on a page of 20 invitations:
// their creation, their stacks' growth and the scheduler. Lists whose items may wait
// on a dataloader batch (nodes, notifications, withdraw results) stay concurrent, as
// their items must all join the batch before it is fetched.
//
// A list named TYPE:FIELD,... is marshalled in order unless its items' selection names
// one of those fields, which may wait on a loader batch (graph.marshalSliceInOrderUnless
// decides per request): withdrawal results are marshalled in order, unless the
// client asks for each result's invitation, whose sender and recipient are loaded.
//
// It runs after gqlgen (graph/resolver.go's go:generate lines) and fails when a named
// list is not found in the form it expects, so a gqlgen upgrade cannot silently undo it.
//
//	go run ./internal/inorder FILE TYPE[:FIELD,...]...
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// concurrent is the call gqlgen generates in a list's marshaller (worker limit 0,
// panic handler on; see gqlgen.yml).
const concurrent = "graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func("

// inOrder is the replacement, defined in package graph (graph/lists.go).
const inOrder = "marshalSliceInOrder(ctx, len(v), func("

// inOrderUnless is the replacement for a list named with fields that may wait.
func inOrderUnless(fields []string) string {
	return fmt.Sprintf("marshalSliceInOrderUnless(ctx, sel, %#v, len(v), func(", fields)
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: inorder FILE TYPE...")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "inorder:", err)
		os.Exit(1)
	}
}

func rewrite(path string, types []string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, arg := range types {
		t, fields, unless := strings.Cut(arg, ":")
		replacement := inOrder
		if unless {
			replacement = inOrderUnless(strings.Split(fields, ","))
		}
		// The marshaller of a non-null list of T: marshalN<T>2ᚕ…(ctx, sel, v []…) whose
		// first statement calls MarshalSliceConcurrently.
		re := regexp.MustCompile(`(?m)^func \(ec \*executionContext\) marshalN` + regexp.QuoteMeta(t) + `2ᚕ[^\n]*\{\n\tret := `)
		loc := re.FindIndex(src)
		if loc == nil {
			return fmt.Errorf("%s: no list marshaller for %s", path, t)
		}
		rest := src[loc[1]:]
		switch {
		case bytes.HasPrefix(rest, []byte(replacement)):
			continue // already rewritten
		case !bytes.HasPrefix(rest, []byte(concurrent)):
			return fmt.Errorf("%s: the list marshaller for %s does not start with %q", path, t, concurrent)
		}
		src = append(src[:loc[1]:loc[1]], append([]byte(replacement), rest[len(concurrent):]...)...)
	}
	return os.WriteFile(path, src, 0o644)
}
