package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// object is an object marshaller as gqlgen v0.17.95 generates it, with one plain field
// and one resolver field (which may be deferred).
const object = `func (ec *executionContext) _Member(ctx context.Context, sel ast.SelectionSet, obj *db.Member) graphql.Marshaler {
	fields := graphql.CollectFields(ec.OperationContext, sel, memberImplementors)

	out := graphql.NewFieldSet(fields)
	deferredFieldSet := graphql.NewFieldSet(nil)
	deferLabelToView := make(map[string]*graphql.FieldSetView)
	for i, field := range fields {
		switch field.Name {
		case "id":
			out.Values[i] = ec._Member_id(ctx, field, obj)
		case "connectionStatus":
			field := field

			innerFunc := func(ctx context.Context, fs *graphql.FieldSet) (res graphql.Marshaler) {
				defer func() {
					if r := recover(); r != nil {
						ec.Error(ctx, ec.Recover(ctx, r))
					}
				}()
				res = ec._Member_connectionStatus(ctx, field, obj)
				if res == graphql.Null {
					atomic.AddUint32(&fs.Invalids, 1)
				}
				return res
			}

			if field.IsDeferred() {
				deferredFieldSet.AddField(field)
				fieldIndex := len(deferredFieldSet.Values) - 1
				deferredFieldSet.Concurrently(fieldIndex, func(ctx context.Context) graphql.Marshaler {
					return innerFunc(ctx, deferredFieldSet)
				})
				continue
			}

			out.Concurrently(i, func(ctx context.Context) graphql.Marshaler { return innerFunc(ctx, out) })
		}
	}
	out.Dispatch(ctx)
	if out.Invalids > 0 {
		return graphql.Null
	}

	atomic.AddInt32(&ec.Deferred, int32(min(len(deferLabelToView), math.MaxInt32)))

	ec.ProcessDeferredGroup(graphql.DeferredGroup{
		Defers:   deferLabelToView,
		Path:     graphql.GetPath(ctx),
		FieldSet: deferredFieldSet,
		Context:  ctx,
	})

	return out
}
`

// execContext is the executionContext gqlgen v0.17.95 generates.
const execContext = `type executionContext struct {
	*graphql.ExecutionContextState[ResolverRoot, DirectiveRoot, ComplexityRoot]
}
`

func write(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "generated.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRewrite(t *testing.T) {
	path := write(t, execContext+"\n"+object+"\n"+strings.ReplaceAll(object, "_Member", "_Invitation"))
	if err := rewrite(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	out := string(b)
	for want, n := range map[string]int{
		"\tvar deferredFieldSet *graphql.FieldSet\n\tvar deferLabelToView map[string]*graphql.FieldSetView\n": 2,
		"\t\t\tif field.IsDeferred() {\n\t\t\t\tif deferredFieldSet == nil {\n\t\t\t\t\tdeferredFieldSet = graphql.NewFieldSet(nil)\n" +
			"\t\t\t\t\tdeferLabelToView = make(map[string]*graphql.FieldSetView)\n\t\t\t\t}\n\t\t\t\tdeferredFieldSet.AddField(field)\n": 2,
		"\tif len(deferLabelToView) > 0 {\n\t\tatomic.AddInt32(&ec.Deferred, int32(min(len(deferLabelToView), math.MaxInt32)))\n" +
			"\t\tec.ProcessDeferredGroup(graphql.DeferredGroup{\n\t\t\tDefers:   deferLabelToView,\n\t\t\tPath:     graphql.GetPath(ctx),\n" +
			"\t\t\tFieldSet: deferredFieldSet,\n\t\t\tContext:  ctx,\n\t\t})\n\t}\n\n\treturn objOut\n}\n": 2,
	} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%d× %q, want %d, in\n%s", got, want, n, out)
		}
	}
	if n := strings.Count(out, "\t\t\t\tset := deferredFieldSet\n\t\t\t\tset.Concurrently(fieldIndex, func(ctx context.Context) graphql.Marshaler {\n\t\t\t\t\treturn innerFunc(ctx, set)\n"); n != 2 {
		t.Errorf("%d deferred closures capture a copy of the set, want 2:\n%s", n, out)
	}
	if strings.Contains(out, ":= graphql.NewFieldSet(nil)") {
		t.Errorf("an eager deferred set is left:\n%s", out)
	}
	if n := strings.Count(out, "\tobjOut := newObject(fields)\n\tout := &objOut.set\n"); n != 2 {
		t.Errorf("%d objects made by newObject, want 2:\n%s", n, out)
	}
	if strings.Contains(out, "return out\n") {
		t.Errorf("a field set is returned itself:\n%s", out)
	}
	// Each marshaller collects its fields through a slot of its own.
	for want, n := range map[string]int{
		"\tfields := collectFields(&ec.collected[0], ec.OperationContext, sel, memberImplementors)\n": 1,
		"\tfields := collectFields(&ec.collected[1], ec.OperationContext, sel, memberImplementors)\n": 1,
		"\t// collected are the marshallers' last collected fields (internal/marshallers).\n" +
			"\tcollected [2]atomic.Pointer[collectedFields]\n}\n": 1,
		"graphql.CollectFields": 0,
	} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%d× %q, want %d, in\n%s", got, want, n, out)
		}
	}
	// The resolver field runs in line when it is the only one selected.
	for want, n := range map[string]int{
		"\tfields := collectFields(&ec.collected[0], ec.OperationContext, sel, memberImplementors)\n" +
			"\tlone := loneDelayed(fields, \"connectionStatus\")\n": 1,
		"\t\tcase \"connectionStatus\":\n\t\t\tif i == lone {\n" +
			"\t\t\t\tout.Values[i] = ec._Member_connectionStatus(ctx, field, obj)\n" +
			"\t\t\t\tif out.Values[i] == graphql.Null {\n\t\t\t\t\tatomic.AddUint32(&out.Invalids, 1)\n\t\t\t\t}\n" +
			"\t\t\t\tcontinue\n\t\t\t}\n\t\t\tfield := field\n": 1,
		"\t\t\t\tout.Values[i] = ec._Invitation_connectionStatus(ctx, field, obj)\n":                              1,
		"\t\t\tout.Concurrently(i, func(ctx context.Context) graphql.Marshaler { return innerFunc(ctx, out) })\n": 2,
	} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%d× %q, want %d, in\n%s", got, want, n, out)
		}
	}
	// A second run leaves the file as it is.
	if err := rewrite(path); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != out {
		t.Error("a second run changed the file")
	}
}

func TestRewriteRefusesUnknownForms(t *testing.T) {
	for name, src := range map[string]string{
		"no objects":                         execContext,
		"no executionContext":                object,
		"executionContext in another form":   strings.Replace(execContext, "\n}", "\n\tn int\n}", 1) + object,
		"fields collected in another form":   execContext + strings.Replace(object, "ec.OperationContext, sel,", "ec.OperationContext, sel[:],", 1),
		"hand-over in another form":          execContext + strings.Replace(object, "Path:     graphql.GetPath(ctx),", "Path: graphql.GetPath(ctx),", 1),
		"deferred branch in another form":    execContext + strings.Replace(object, "deferredFieldSet.AddField(field)", "deferredFieldSet.AddField(field, 1)", 1),
		"field set returned in another form": execContext + strings.Replace(object, "\treturn out\n", "\treturn graphql.Marshaler(out)\n", 1),
		"field set made in another form":     execContext + strings.Replace(object, "out := graphql.NewFieldSet(fields)", "out := graphql.NewFieldSet(fields[:])", 1),
		"delayed field in another form":      execContext + strings.Replace(object, "res = ec._Member_connectionStatus(ctx, field, obj)", "res = ec._Member_connectionStatus(ctx, field, obj, 1)", 1),
		"delayed hand-over in another form":  execContext + strings.Replace(object, "{ return innerFunc(ctx, out) })", "{ return innerFunc(ctx, out) }, 1)", 1),
		"deferred closure in another form":   execContext + strings.Replace(object, "func(ctx context.Context) graphql.Marshaler {\n\t\t\t\t\treturn innerFunc(ctx, deferredFieldSet)", "func(ctx context.Context) (m graphql.Marshaler) {\n\t\t\t\t\treturn innerFunc(ctx, deferredFieldSet)", 1),
	} {
		if err := rewrite(write(t, src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
