// Command leaffields rewrites gqlgen's generated executor so that a field read straight
// from its Go value, a leaf scalar (String, ID, Int, Boolean, DateTime), is
// marshalled directly instead of through graphql.ResolveField.
//
// ResolveField gives every field a field context, a context layer, two closures, an
// interface box for the value, a panic handler and the (empty) field middleware chain.
// For a field like Invitation.sentAt, which reads obj.SentAt and can neither fail, panic
// nor be null, none of that has a use, and a page of 20 invitations has a hundred such
// fields: about a fifth of the server's CPU for the heaviest page (bench case b). The
// rewritten function calls the same marshaller on the same value:
//
//	func (ec *executionContext) _InvitationStats_sent(ctx context.Context, field graphql.CollectedField, obj *db.Stats) (ret graphql.Marshaler) {
//		return ec.marshalNInt2int(ctx, field.Selections, obj.Sent)
//	}
//
// or, for String and DateTime fields read from a struct field and for global ids (read
// from obj.NodeID()), returns a value that points at the field or object and writes
// what gqlgen's marshaller would (graph/leaves.go), without the closure gqlgen's
// allocates for every value:
//
//	func (ec *executionContext) _Invitation_sentAt(ctx context.Context, field graphql.CollectedField, obj *db.Invitation) (ret graphql.Marshaler) {
//		return leafDateTime{&obj.SentAt}
//	}
//
// Fields with a resolver, arguments, directives, a context or an error, or of another
// type keep gqlgen's code, as do the introspection types. These scalars' marshallers
// never return null for their Go types nor report errors, so no error (whose path would
// need the field's context) can arise. Float is left out: its marshaller reports NaN and
// infinities as errors of the field's path.
//
// A non-null field of another kind, whose value is read from the object (obj.Edges,
// obj.PageInfo()) or returned by a resolver or method that takes only the context and
// the object (ec.Resolvers.Invitation().Recipient(ctx, obj), obj.TotalCount(ctx)), is
// resolved inline: its field context (which the paths of its children's errors need),
// a panic handler, the resolver's error reported at the field's path, and its
// marshaller, as ResolveField does them for such a field, without ResolveField's
// closures and boxes (about five allocations a field; a page of 20 has 40 such fields,
// edges' nodes and invitations' recipients). The field context is copied into a context
// that holds it (graph/fieldctx.go), one allocation where graphql.WithFieldContext's
// context layer is another; the copied one does not outlive the call:
//
//	func (ec *executionContext) _Invitation_recipient(ctx context.Context, field graphql.CollectedField, obj *db.Invitation) (ret graphql.Marshaler) {
//		field0, err := ec.fieldContext_Invitation_recipient(ctx, field)
//		if err != nil {
//			return graphql.Null
//		}
//		ctx, fc := withFieldContext(ctx, *field0)
//		defer func() {
//			if r := recover(); r != nil {
//				ec.Error(ctx, ec.Recover(ctx, r))
//				ret = graphql.Null
//			}
//		}()
//		res, err := ec.Resolvers.Invitation().Recipient(ctx, obj)
//		if err != nil {
//			ec.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
//			return graphql.Null
//		}
//		...
//		fc.Result = res
//		return ec.marshalNMember2ᚖinvitationsᚋdbᚐMember(ctx, field.Selections, res)
//	}
//
// Both rewrites leave out the field middleware chain, which is empty: the server
// installs no field interceptor (an extension that had one would have to undo them).
//
// It runs after gqlgen (graph/resolver.go's go:generate lines) and fails when a field
// it must rewrite (named on its command line) does not have the form it expects, so a
// gqlgen upgrade cannot silently undo it.
//
//	go run ./internal/leaffields FILE TYPE.FIELD...
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// field matches the whole generated function of a field that returns obj.X or obj.X()
// with no middleware and marshals it with a leaf scalar's marshaller.
var field = regexp.MustCompile(`(?m)^(func \(ec \*executionContext\) _([A-Za-z0-9]+)_([A-Za-z0-9]+)\(ctx context\.Context, field graphql\.CollectedField, obj \*[A-Za-z0-9_.]+\) \(ret graphql\.Marshaler\) \{\n)` +
	`\treturn graphql\.ResolveField\(\n` +
	`\t\tctx,\n\t\tec\.OperationContext,\n\t\tfield,\n` +
	`\t\tfunc\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{\n\t\t\treturn ec\.fieldContext_[A-Za-z0-9_]+\(ctx, field\)\n\t\t\},\n` +
	`\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn obj\.([A-Z][A-Za-z0-9]*(?:\(\))?), nil\n\t\t\},\n` +
	`\t\tnil,\n` +
	`\t\tfunc\(ctx context\.Context, selections ast\.SelectionSet, v [^)\n]+\) graphql\.Marshaler \{\n\t\t\treturn ec\.(marshal[NO](?:String|ID|Int|Boolean|DateTime)2[^(\s]+)\(ctx, selections, v\)\n\t\t\},\n` +
	`\t\ttrue,\n\t\t(?:true|false),\n\t\)\n\}`)

// pointed are the marshallers whose values, when read from a struct field (obj.X, not
// obj.X()), are written by a value that points at the field (graph/leaves.go) instead:
// gqlgen's allocate a closure for each value. The format verb is the field. An ID read
// from obj.NodeID() is written by nodeIDLeaf(obj), from the object.
var pointed = map[string]string{
	"marshalNString2string":      "leafString{&%s}",
	"marshalOString2ᚖstring":     "optionalLeafString(%s)",
	"marshalNDateTime2timeᚐTime": "leafDateTime{&%s}",
}

// resolved matches the whole generated function of a non-null field without arguments
// whose value is an expression of the object (the first group of the value: obj.X or
// obj.X()) or a call of a resolver or method with the context and the object (the
// second: it returns the value and an error), with no middleware and any marshaller.
var resolved = regexp.MustCompile(`(?m)^(func \(ec \*executionContext\) _([A-Za-z0-9]+)_([A-Za-z0-9]+)\(ctx context\.Context, field graphql\.CollectedField, obj \*[A-Za-z0-9_.]+\) \(ret graphql\.Marshaler\) \{\n)` +
	`\treturn graphql\.ResolveField\(\n` +
	`\t\tctx,\n\t\tec\.OperationContext,\n\t\tfield,\n` +
	`\t\tfunc\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{\n\t\t\treturn (ec\.fieldContext_[A-Za-z0-9_]+)\(ctx, field\)\n\t\t\},\n` +
	`\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn (?:(obj\.[A-Z][A-Za-z0-9]*(?:\(\))?), nil|(ec\.Resolvers\.[A-Z][A-Za-z0-9]*\(\)\.[A-Z][A-Za-z0-9]*\(ctx, obj\)|obj\.[A-Z][A-Za-z0-9]*\(ctx\)))\n\t\t\},\n` +
	`\t\tnil,\n` +
	`\t\tfunc\(ctx context\.Context, selections ast\.SelectionSet, v [^)\n]+\) graphql\.Marshaler \{\n\t\t\treturn ec\.(marshalN[^(\s]+)\(ctx, selections, v\)\n\t\t\},\n` +
	`\t\ttrue,\n\t\ttrue,\n\t\)\n\}`)

// inline is the body of a resolved field: %[1]s is its field context function, %[2]s
// the statement that sets res (and err, then checked), %[3]s its marshaller. Like
// ResolveField, it reports a nil interface as "must not be null", and nulls the field
// on an error or a panic (its non-null parent is nulled in turn).
const inline = `	field0, err := %[1]s(ctx, field)
	if err != nil {
		return graphql.Null
	}
	ctx, fc := withFieldContext(ctx, *field0)
	defer func() {
		if r := recover(); r != nil {
			ec.Error(ctx, ec.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	%[2]s
	if any(res) == nil {
		if !graphql.HasFieldError(ctx, fc) {
			ec.Errorf(ctx, "must not be null")
		}
		return graphql.Null
	}
	fc.Result = res
	return ec.%[3]s(ctx, field.Selections, res)
}`

// checkErr follows a resolver's call in a resolved field.
const checkErr = `
	if err != nil {
		ec.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
		return graphql.Null
	}`

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: leaffields FILE TYPE.FIELD...")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "leaffields:", err)
		os.Exit(1)
	}
}

func rewrite(path string, required []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	out := field.ReplaceAllStringFunc(string(b), func(fn string) string {
		m := field.FindStringSubmatch(fn)
		done[m[2]+"."+m[3]] = true
		if m[4] == "NodeID()" && m[5] == "marshalNID2string" {
			return m[1] + "\treturn nodeIDLeaf(obj)\n}"
		}
		if wrap, ok := pointed[m[5]]; ok && !strings.HasSuffix(m[4], "()") {
			return m[1] + "\treturn " + fmt.Sprintf(wrap, "obj."+m[4]) + "\n}"
		}
		return m[1] + "\treturn ec." + m[5] + "(ctx, field.Selections, obj." + m[4] + ")\n}"
	})
	out = resolved.ReplaceAllStringFunc(out, func(fn string) string {
		m := resolved.FindStringSubmatch(fn)
		done[m[2]+"."+m[3]] = true
		set := "res, err := " + m[6] + checkErr
		if m[5] != "" {
			set = "res := " + m[5]
		}
		return m[1] + fmt.Sprintf(inline, m[4], set, m[7])
	})
	for _, f := range required {
		typ, name, _ := strings.Cut(f, ".")
		// Rewritten now, or by an earlier run of this command on the same file.
		direct := regexp.MustCompile(`func \(ec \*executionContext\) _` + regexp.QuoteMeta(typ) + `_` + regexp.QuoteMeta(name) +
			`\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n\treturn ` +
			`(?:ec\.marshal[^(]+\(ctx, field\.Selections, obj\.|leaf[A-Za-z]+\{&obj\.|optionalLeafString\(obj\.|nodeIDLeaf\(obj\))`)
		inlined := regexp.MustCompile(`func \(ec \*executionContext\) _` + regexp.QuoteMeta(typ) + `_` + regexp.QuoteMeta(name) +
			`\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n\tfield0, err := ec\.fieldContext_`)
		if !done[f] && !direct.MatchString(out) && !inlined.MatchString(out) {
			return fmt.Errorf("%s: %s is not a plain or resolved field in the form expected", path, f)
		}
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
