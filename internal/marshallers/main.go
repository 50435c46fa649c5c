// Command marshallers rewrites the object marshallers of gqlgen's generated executor
// (one function per GraphQL object type, run for every object of a response) in four
// ways. All matter most on the heaviest page (bench case b: 20 edges, invitations and
// members).
//
// First, an object with no deferred field (no @defer in the request, the only case our
// transports serve) skips gqlgen's @defer bookkeeping. gqlgen v0.17 marshals every
// object by allocating a field set and a map for its deferred fields, and then hands
// them to ProcessDeferredGroup together with the object's path, graphql.GetPath(ctx),
// which walks the field contexts and allocates the path. ProcessDeferredGroup returns at
// once when there is nothing deferred, but the path has been built by then: about 4% of
// the server's CPU on case (b), with the two allocations another 3%. The rewritten
// marshaller creates the deferred set and map on the first deferred field and calls
// ProcessDeferredGroup (and counts the group) only when there is one. The closures of
// deferred fields capture a copy of the set, so that the variable, now assigned after
// its declaration, is not moved to the heap in every object:
//
//	var deferredFieldSet *graphql.FieldSet
//	var deferLabelToView map[string]*graphql.FieldSetView
//	...
//			if field.IsDeferred() {
//				if deferredFieldSet == nil {
//					deferredFieldSet = graphql.NewFieldSet(nil)
//					deferLabelToView = make(map[string]*graphql.FieldSetView)
//				}
//	...
//				...
//				set := deferredFieldSet
//				set.Concurrently(fieldIndex, func(ctx context.Context) graphql.Marshaler {
//					return innerFunc(ctx, set)
//				})
//	...
//	if len(deferLabelToView) > 0 {
//		atomic.AddInt32(&ec.Deferred, ...)
//		ec.ProcessDeferredGroup(graphql.DeferredGroup{...})
//	}
//
// Second, the marshaller returns an object (graph/objects.go), which writes its fields
// and values as objectJSON does, instead of the *graphql.FieldSet itself:
//
//	return objOut
//
// FieldSet.MarshalGQL writes the same JSON, but allocates a map of the aliases written
// for every object and a copy of every field (its iterator yields a pointer to the loop
// variable): 13% of the allocations and about a tenth of the server's CPU on case (b)
// (BenchmarkHeavyPage). As objectJSON writes the object, the field set only gathers the
// values, and newObject makes the object, its set and its values in one allocation:
//
//	objOut := newObject(fields)
//	out := &objOut.set
//
// Third, each marshaller remembers the fields it collected last, in a slot of its own in
// the operation's executionContext, and asks graphql.CollectFields again only for
// another selection set:
//
//	fields := collectFields(&ec.collected[7], ec.OperationContext, sel, invitationImplementors)
//
// gqlgen caches collected fields per operation too, but finds them by a key it
// allocates and hashes, under a lock, for every object: 5% of the allocations on case
// (b). A list's items share their selection set, so all but the first find it in the
// slot (graph/collect.go).
//
// Fourth, a field that gqlgen resolves "concurrently" (one with a resolver, or a method
// taking the context) runs in line when it is the only such field of the object the
// request selects. gqlgen gives each such field a copy of the field, two closures and a
// place in the set's list of delayed fields, and its Dispatch then runs a lone delayed
// field on the calling goroutine anyway: the rewritten case does the same without them
// (a page of 20 invitations with their recipients: 80 allocations fewer):
//
//	fields := collectFields(&ec.collected[2], ec.OperationContext, sel, invitationImplementors)
//	lone := loneDelayed(fields, "sender", "recipient", "status", "source")
//	...
//		case "recipient":
//			if i == lone {
//				out.Values[i] = ec._Invitation_recipient(ctx, field, obj)
//				if out.Values[i] == graphql.Null {
//					atomic.AddUint32(&out.Invalids, 1)
//				}
//				continue
//			}
//			field := field
//			...
//
// Two or more such fields still run concurrently, each in a goroutine but the first, as
// gqlgen runs them, so that loader lookups they start join one batch. The field's
// function reports a panic of its own as an error of its path, as ResolveField does and
// the rewritten fields do (internal/leaffields): the closure's second guard is not needed.
//
// It runs after gqlgen (graph/resolver.go's go:generate lines) and fails when the forms
// it rewrites are not found as often as each other, so a gqlgen upgrade that changes
// them cannot silently undo or half-apply it. A second run leaves the file as it is.
//
//	go run ./internal/marshallers FILE
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

var (
	// decl is the eager creation of an object's deferred set and map.
	decl = regexp.MustCompile(`(?m)^\tdeferredFieldSet := graphql\.NewFieldSet\(nil\)\n\tdeferLabelToView := make\(map\[string\]\*graphql\.FieldSetView\)\n`)
	// branch is the start of a field's deferred branch.
	branch = regexp.MustCompile(`(?m)^(\t+)if field\.IsDeferred\(\) \{\n`)
	// process is the unconditional count and hand-over of the object's deferred group.
	process = regexp.MustCompile(`(?m)^\tatomic\.AddInt32\(&ec\.Deferred, int32\(min\(len\(deferLabelToView\), math\.MaxInt32\)\)\)\n\n` +
		`\tec\.ProcessDeferredGroup\(graphql\.DeferredGroup\{\n` +
		`\t\tDefers:   deferLabelToView,\n` +
		`\t\tPath:     graphql\.GetPath\(ctx\),\n` +
		`\t\tFieldSet: deferredFieldSet,\n` +
		`\t\tContext:  ctx,\n` +
		`\t\}\)\n`)
)

// deferredClosure is how a deferred field resolved concurrently hands its closure to
// the deferred set, and deferredClosureCopy the same with a copy of the set.
const (
	deferredClosure = "\t\t\t\tdeferredFieldSet.Concurrently(fieldIndex, func(ctx context.Context) graphql.Marshaler {\n" +
		"\t\t\t\t\treturn innerFunc(ctx, deferredFieldSet)\n"
	deferredClosureCopy = "\t\t\t\tset := deferredFieldSet\n" +
		"\t\t\t\tset.Concurrently(fieldIndex, func(ctx context.Context) graphql.Marshaler {\n" +
		"\t\t\t\t\treturn innerFunc(ctx, set)\n"
)

// rewritten is how an already rewritten marshaller declares its deferred set.
const rewritten = "\tvar deferredFieldSet *graphql.FieldSet\n"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: marshallers FILE")
		os.Exit(2)
	}
	if err := rewrite(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "marshallers:", err)
		os.Exit(1)
	}
}

// The creation of an object marshaller's field set and its last statement, before and
// after the rewrite to newObject.
const (
	newSet       = "\tout := graphql.NewFieldSet(fields)\n"
	newObj       = "\tobjOut := newObject(fields)\n\tout := &objOut.set\n"
	returnSet    = "\n\treturn out\n}\n"
	returnObject = "\n\treturn objOut\n}\n"
)

func rewrite(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	src, err := lazyDefer(string(b))
	if err == nil {
		src, err = plainObjects(src)
	}
	if err == nil {
		src, err = rememberFields(src)
	}
	if err == nil {
		src, err = loneInline(src)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(src), 0o644)
}

// lazyDefer makes the @defer bookkeeping of each object happen only for a deferred field.
func lazyDefer(src string) (string, error) {
	objects := len(decl.FindAllStringIndex(src, -1))
	if objects == 0 {
		if strings.Contains(src, rewritten) && !strings.Contains(src, "deferredFieldSet :=") {
			return src, nil // rewritten by an earlier run
		}
		return "", fmt.Errorf("no object marshaller in the form expected")
	}
	if n := len(process.FindAllStringIndex(src, -1)); n != objects {
		return "", fmt.Errorf("%d objects create a deferred set but %d hand it over in the form expected", objects, n)
	}
	if n := strings.Count(src, "deferredFieldSet.AddField(field)"); n != len(branch.FindAllStringIndex(src, -1)) {
		return "", fmt.Errorf("%d deferred branches but %d deferred fields in the form expected", len(branch.FindAllStringIndex(src, -1)), n)
	}
	src = decl.ReplaceAllString(src, rewritten+"\tvar deferLabelToView map[string]*graphql.FieldSetView\n")
	src = branch.ReplaceAllString(src, "${1}if field.IsDeferred() {\n"+
		"${1}\tif deferredFieldSet == nil {\n"+
		"${1}\t\tdeferredFieldSet = graphql.NewFieldSet(nil)\n"+
		"${1}\t\tdeferLabelToView = make(map[string]*graphql.FieldSetView)\n"+
		"${1}\t}\n")
	// A deferred field's closure captures a copy of the set: capturing the variable,
	// now assigned after its declaration, would move it to the heap in every object.
	src = strings.ReplaceAll(src, deferredClosure, deferredClosureCopy)
	if strings.Contains(src, "innerFunc(ctx, deferredFieldSet)") {
		return "", fmt.Errorf("a deferred field's closure is not in the form expected")
	}
	return process.ReplaceAllStringFunc(src, func(block string) string {
		lines := strings.SplitAfter(strings.TrimSuffix(block, "\n"), "\n")
		var out strings.Builder
		out.WriteString("\tif len(deferLabelToView) > 0 {\n")
		for _, l := range lines {
			if l == "\n" {
				continue
			}
			out.WriteString("\t" + l)
		}
		out.WriteString("\n\t}\n")
		return out.String()
	}), nil
}

// plainObjects makes each object marshaller return an object of its fields and values,
// made by newObject, instead of its field set.
func plainObjects(src string) (string, error) {
	objects := strings.Count(src, newSet) + strings.Count(src, newObj)
	if objects == 0 {
		return "", fmt.Errorf("no object marshaller creates its field set in the form expected")
	}
	if n := strings.Count(src, returnSet) + strings.Count(src, returnObject); n != objects {
		return "", fmt.Errorf("%d objects create a field set but %d return it in the form expected", objects, n)
	}
	src = strings.ReplaceAll(src, newSet, newObj)
	return strings.ReplaceAll(src, returnSet, returnObject), nil
}

var (
	// execContextType is the generated executionContext, with the slots of an earlier run.
	execContextType = regexp.MustCompile(`(?m)^type executionContext struct \{\n` +
		`\t\*graphql\.ExecutionContextState\[ResolverRoot, DirectiveRoot, ComplexityRoot\]\n` +
		`(?:\t//.*\n)*(?:\tcollected \[\d+\]atomic\.Pointer\[collectedFields\]\n)?\}\n`)
	// collect is a marshaller's collection of its fields, as gqlgen writes it or rewritten.
	collect = regexp.MustCompile(`graphql\.CollectFields\(ec\.OperationContext, sel, |collectFields\(&ec\.collected\[\d+\], ec\.OperationContext, sel, `)
)

// rememberFields gives every marshaller's collection of its fields a slot of its own
// in executionContext, and has collectFields (graph/collect.go) use it.
func rememberFields(src string) (string, error) {
	if n := len(execContextType.FindAllStringIndex(src, -1)); n != 1 {
		return "", fmt.Errorf("%d executionContext types in the form expected, want 1", n)
	}
	slot := 0
	src = collect.ReplaceAllStringFunc(src, func(string) string {
		slot++
		return fmt.Sprintf("collectFields(&ec.collected[%d], ec.OperationContext, sel, ", slot-1)
	})
	if slot == 0 {
		return "", fmt.Errorf("no marshaller collects its fields in the form expected")
	}
	return execContextType.ReplaceAllLiteralString(src, "type executionContext struct {\n"+
		"\t*graphql.ExecutionContextState[ResolverRoot, DirectiveRoot, ComplexityRoot]\n"+
		"\t// collected are the marshallers' last collected fields (internal/marshallers).\n"+
		fmt.Sprintf("\tcollected [%d]atomic.Pointer[collectedFields]\n", slot)+
		"}\n"), nil
}

var (
	// marshaller is an object marshaller, from its signature to its closing brace.
	marshaller = regexp.MustCompile(`(?ms)^func \(ec \*executionContext\) _[A-Za-z0-9]+\(ctx context\.Context, sel ast\.SelectionSet, obj [^)]+\) graphql\.Marshaler \{\n.*?^\}\n`)
	// collected is a marshaller's collection of its fields (after rememberFields).
	collected = regexp.MustCompile(`(?m)^\tfields := collectFields\([^\n]*\)\n`)
	// delayed is the start of a field's case that gqlgen resolves concurrently: its
	// name, and the call of the field's function.
	delayed = regexp.MustCompile(`(?m)^\t\tcase "([A-Za-z0-9_]+)":\n` +
		`\t\t\tfield := field\n\n` +
		`\t\t\tinnerFunc := func\(ctx context\.Context, fs \*graphql\.FieldSet\) \(res graphql\.Marshaler\) \{\n` +
		`\t\t\t\tdefer func\(\) \{\n\t\t\t\t\tif r := recover\(\); r != nil \{\n\t\t\t\t\t\tec\.Error\(ctx, ec\.Recover\(ctx, r\)\)\n\t\t\t\t\t\}\n\t\t\t\t\}\(\)\n` +
		`\t\t\t\tres = (ec\._[A-Za-z0-9]+_[A-Za-z0-9_]+\(ctx, field, obj\))\n` +
		`(\t\t\t\tif res == graphql\.Null \{\n\t\t\t\t\tatomic\.AddUint32\(&fs\.Invalids, 1\)\n\t\t\t\t\}\n)?`)
)

// concurrentCall is how a delayed field's case hands its closure to the field set.
const concurrentCall = "\t\t\tout.Concurrently(i, func(ctx context.Context) graphql.Marshaler { return innerFunc(ctx, out) })\n"

// loneInline has each object marshaller with fields gqlgen resolves concurrently run
// such a field in line when it is the only one selected (loneDelayed, graph/objects.go).
func loneInline(src string) (string, error) {
	if strings.Contains(src, "lone := loneDelayed(") {
		return src, nil // rewritten by an earlier run
	}
	cases := 0
	var failed error
	src = marshaller.ReplaceAllStringFunc(src, func(fn string) string {
		found := delayed.FindAllStringSubmatch(fn, -1)
		if len(found) == 0 || failed != nil {
			return fn
		}
		if n := strings.Count(fn, concurrentCall); n != len(found) {
			failed = fmt.Errorf("a marshaller has %d delayed fields but %d hand them to its field set in the form expected", len(found), n)
			return fn
		}
		if len(collected.FindAllStringIndex(fn, -1)) != 1 {
			failed = fmt.Errorf("a marshaller with delayed fields does not collect them in the form expected")
			return fn
		}
		names := make([]string, len(found))
		for i, m := range found {
			names[i] = fmt.Sprintf("%q", m[1])
		}
		fn = collected.ReplaceAllStringFunc(fn, func(line string) string {
			return line + "\tlone := loneDelayed(fields, " + strings.Join(names, ", ") + ")\n"
		})
		cases += len(found)
		return delayed.ReplaceAllStringFunc(fn, func(c string) string {
			m := delayed.FindStringSubmatch(c)
			check := ""
			if m[3] != "" {
				check = "\t\t\t\tif out.Values[i] == graphql.Null {\n\t\t\t\t\tatomic.AddUint32(&out.Invalids, 1)\n\t\t\t\t}\n"
			}
			head := "\t\tcase \"" + m[1] + "\":\n"
			return head + "\t\t\tif i == lone {\n\t\t\t\tout.Values[i] = " + m[2] + "\n" + check +
				"\t\t\t\tcontinue\n\t\t\t}\n" + strings.TrimPrefix(c, head)
		})
	})
	if failed != nil {
		return "", failed
	}
	if cases == 0 {
		return "", fmt.Errorf("no object marshaller has a delayed field in the form expected")
	}
	return src, nil
}
