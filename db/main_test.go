package db_test

import (
	"testing"

	"invitations/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
