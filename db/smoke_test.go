package db_test

import (
	"testing"

	"invitations/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func TestSmoke(t *testing.T) {
	conn := dbtest.Open(t)
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM members`); err != nil {
		t.Fatal(err)
	}
}
