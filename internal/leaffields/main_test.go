package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fieldFunc is a field function as gqlgen v0.17 generates it.
func fieldFunc(typ, name, value, goType, marshal string) string {
	return `func (ec *executionContext) _` + typ + `_` + name + `(ctx context.Context, field graphql.CollectedField, obj *db.` + typ + `) (ret graphql.Marshaler) {
	return graphql.ResolveField(
		ctx,
		ec.OperationContext,
		field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext_` + typ + `_` + name + `(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return ` + value + `
		},
		nil,
		func(ctx context.Context, selections ast.SelectionSet, v ` + goType + `) graphql.Marshaler {
			return ec.` + marshal + `(ctx, selections, v)
		},
		true,
		true,
	)
}
`
}

func TestRewrite(t *testing.T) {
	src := fieldFunc("Invitation", "sentAt", "obj.SentAt, nil", "time.Time", "marshalNDateTime2timeᚐTime") +
		fieldFunc("Invitation", "id", "obj.NodeID(), nil", "string", "marshalNID2string") +
		fieldFunc("Invitation", "message", "obj.Message, nil", "*string", "marshalOString2ᚖstring") +
		fieldFunc("Member", "name", "obj.Name, nil", "string", "marshalNString2string") +
		// A String read from a method is marshalled by gqlgen's marshaller.
		fieldFunc("Member", "handle", "obj.Handle(), nil", "string", "marshalNString2string") +
		// A resolver, a method with a context and an object read from the object are
		// resolved inline.
		fieldFunc("Invitation", "recipient", "ec.Resolvers.Invitation().Recipient(ctx, obj)", "*db.Member", "marshalNMember2ᚖinvitationsᚋdbᚐMember") +
		fieldFunc("Connection", "totalCount", "obj.TotalCount(ctx)", "int", "marshalNInt2int") +
		fieldFunc("Edge", "node", "obj.Node, nil", "*db.Invitation", "marshalNInvitation2ᚖinvitationsᚋdbᚐInvitation") +
		// A Float, a nullable object and a resolver with arguments keep gqlgen's code.
		fieldFunc("Stats", "acceptanceRate", "obj.AcceptanceRate, nil", "*float64", "marshalOFloat2ᚖfloat64") +
		fieldFunc("Edge", "sender", "obj.Sender, nil", "*db.Member", "marshalOMember2ᚖinvitationsᚋdbᚐMember") +
		fieldFunc("Member", "invitations", "ec.Resolvers.Member().Invitations(ctx, obj, fc.Args[\"first\"].(*int))", "*db.Connection", "marshalNConnection2ᚖinvitationsᚋdbᚐConnection")
	path := filepath.Join(t.TempDir(), "generated.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	required := []string{"Invitation.sentAt", "Invitation.id", "Invitation.message", "Member.name", "Member.handle",
		"Invitation.recipient", "Connection.totalCount", "Edge.node"}
	if err := rewrite(path, required); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	out := string(b)
	for _, want := range []string{
		"obj *db.Invitation) (ret graphql.Marshaler) {\n\treturn leafDateTime{&obj.SentAt}\n}",
		"obj *db.Invitation) (ret graphql.Marshaler) {\n\treturn nodeIDLeaf(obj)\n}",
		"obj *db.Invitation) (ret graphql.Marshaler) {\n\treturn optionalLeafString(obj.Message)\n}",
		"obj *db.Member) (ret graphql.Marshaler) {\n\treturn leafString{&obj.Name}\n}",
		"obj *db.Member) (ret graphql.Marshaler) {\n\treturn ec.marshalNString2string(ctx, field.Selections, obj.Handle())\n}",
		"obj *db.Invitation) (ret graphql.Marshaler) {\n\tfield0, err := ec.fieldContext_Invitation_recipient(ctx, field)\n\tif err != nil {\n\t\treturn graphql.Null\n\t}\n" +
			"\tctx, fc := withFieldContext(ctx, *field0)\n\tdefer func() {\n\t\tif r := recover(); r != nil {\n\t\t\tec.Error(ctx, ec.Recover(ctx, r))\n\t\t\tret = graphql.Null\n\t\t}\n\t}()\n" +
			"\tres, err := ec.Resolvers.Invitation().Recipient(ctx, obj)\n\tif err != nil {\n\t\tec.Error(ctx, graphql.AddFieldLocationToError(ctx, err))\n\t\treturn graphql.Null\n\t}\n" +
			"\tif any(res) == nil {\n\t\tif !graphql.HasFieldError(ctx, fc) {\n\t\t\tec.Errorf(ctx, \"must not be null\")\n\t\t}\n\t\treturn graphql.Null\n\t}\n" +
			"\tfc.Result = res\n\treturn ec.marshalNMember2ᚖinvitationsᚋdbᚐMember(ctx, field.Selections, res)\n}",
		"\tres, err := obj.TotalCount(ctx)\n\tif err != nil {",
		"\t}()\n\tres := obj.Node\n\tif any(res) == nil {",
		"\treturn ec.marshalNInvitation2ᚖinvitationsᚋdbᚐInvitation(ctx, field.Selections, res)\n}",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "graphql.ResolveField("); n != 3 {
		t.Errorf("%d fields left to ResolveField, want 3 (the Float, the nullable object, the resolver with arguments)", n)
	}
	// A second run finds the required fields already rewritten.
	if err := rewrite(path, required); err != nil {
		t.Errorf("second run: %v", err)
	}
	// A required field not in the expected form is an error.
	if err := rewrite(path, []string{"Stats.acceptanceRate"}); err == nil {
		t.Error("a required field that cannot be rewritten was accepted")
	}
}
