package graph

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"invitations/db"
	"invitations/graph/model"
)

// marshalled is what m writes, into a bytes.Buffer and into a plain writer; the test
// fails when the two differ.
func marshalled(t *testing.T, m graphql.Marshaler) string {
	t.Helper()
	var buf, plain bytes.Buffer
	m.MarshalGQL(&buf)
	m.MarshalGQL(plainWriter{&plain})
	if buf.String() != plain.String() {
		t.Fatalf("wrote %q to a bytes.Buffer, %q to a plain writer", buf.String(), plain.String())
	}
	return buf.String()
}

var leafStrings = []string{"", "Ann", `say "hi"`, `back\slash`, "tab\tcr\rlf\n", "\x00\x01\x1f\x7f", "é ünïcödé 日本 🎉",
	"\u2028\u2029", "<script>&amp;</script>", "invalid \xff\xfe utf-8", "trailing \\", `"`, "\x1b[31m"}

func TestLeavesWriteWhatGqlgenWrites(t *testing.T) {
	for _, s := range leafStrings {
		if got, want := marshalled(t, leafString{&s}), marshalled(t, graphql.MarshalString(s)); got != want {
			t.Errorf("leafString(%q) wrote %s, gqlgen %s", s, got, want)
		}
		if got, want := marshalled(t, optionalLeafString(&s)), marshalled(t, graphql.MarshalString(s)); got != want {
			t.Errorf("optionalLeafString(%q) wrote %s, gqlgen %s", s, got, want)
		}
	}
	if optionalLeafString(nil) != graphql.Null {
		t.Error("optionalLeafString(nil) is not graphql.Null")
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, tm := range []time.Time{
		{}, time.Unix(0, 0), time.Date(2026, 11, 22, 6, 5, 4, 0, time.UTC), time.Date(2026, 11, 22, 6, 5, 4, 123456000, time.UTC),
		time.Date(2026, 11, 22, 6, 5, 4, 100, paris), time.Date(2026, 3, 29, 2, 30, 0, 999999999, time.FixedZone("", -7*3600-42*60)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		want := strconv.Quote(tm.UTC().Format(time.RFC3339Nano))
		if got := marshalled(t, leafDateTime{&tm}); got != want {
			t.Errorf("leafDateTime(%v) wrote %s, want %s", tm, got, want)
		}
		if got := marshalled(t, model.MarshalDateTime(tm)); got != want {
			t.Errorf("model.MarshalDateTime(%v) wrote %s, want %s", tm, got, want)
		}
	}
	for _, id := range []int64{0, 1, 255, 123456789, -7, 1<<63 - 1} {
		for _, obj := range []nodeIDAppender{&db.Member{ID: id}, &db.Invitation{ID: id}, &db.Notification{ID: id}} {
			var want string
			switch o := obj.(type) {
			case *db.Member:
				want = marshalled(t, graphql.MarshalID(o.NodeID()))
			case *db.Invitation:
				want = marshalled(t, graphql.MarshalID(o.NodeID()))
			case *db.Notification:
				want = marshalled(t, graphql.MarshalID(o.NodeID()))
			}
			if got := marshalled(t, nodeIDLeaf(obj)); got != want {
				t.Errorf("nodeIDLeaf(%T %d) wrote %s, gqlgen %s", obj, id, got, want)
			}
		}
	}
}

func FuzzLeafString(f *testing.F) {
	for _, s := range leafStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want bytes.Buffer
		leafString{&s}.MarshalGQL(&got)
		graphql.MarshalString(s).MarshalGQL(&want)
		if got.String() != want.String() {
			t.Errorf("leafString(%q) wrote %s, gqlgen %s", s, got.String(), want.String())
		}
	})
}
