package auth

import (
	"testing"

	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
