package server

import (
	"os"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestMain runs more tests at once than there are cores: most of them
// wait — on the publish rule's whole seconds (repo/storage.DateAfter: a
// test of six publishes sleeps for six seconds), on apt-get, on sockets
// held silent on purpose — rather than compute (testutil.WaitBoundParallel).
func TestMain(m *testing.M) {
	testutil.WaitBoundParallel()
	os.Exit(m.Run())
}
