package testutil

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestStartPostgres(t *testing.T) {
	p := StartPostgres(t)
	dsn := p.CreateDB(t, "probe")
	out, err := exec.Command(filepath.Join(postgresBin(t), "psql"), "-At", "-c", "select current_database(), current_setting('port')", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "probe|"+strconv.Itoa(p.Port); got != want {
		t.Errorf("psql says %q, want %q", got, want)
	}
}
