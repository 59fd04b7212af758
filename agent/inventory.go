package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Installed is one package of dpkg's status database.
type Installed struct {
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture,omitempty"`
	// State is the third word of Status: installed, unpacked,
	// half-configured, half-installed, config-files, triggers-awaited,
	// triggers-pending, not-installed.
	State string `json:"state"`
}

// Inventory is what dpkg's status file says is on the device.
type Inventory struct {
	Packages map[string]Installed
	// Broken lists packages in a state that "dpkg --configure -a" or a
	// reinstall must repair.
	Broken []string
}

// Version returns the installed version of name ("" when not installed).
func (inv *Inventory) Version(name string) string {
	p, ok := inv.Packages[name]
	if !ok || p.State != "installed" {
		return ""
	}
	return p.Version
}

// ReadInventory reads ADMINDIR/status. Packages of a foreign architecture
// share their name with the native one; the last entry wins (the agent
// manages native and arch-all packages).
func ReadInventory(adminDir string) (*Inventory, error) {
	name := filepath.Join(adminDir, "status")
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	paras, err := deb.ParseParagraphs(f, name)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	inv := &Inventory{Packages: make(map[string]Installed, len(paras))}
	for _, p := range paras {
		st := strings.Fields(p.Get("Status"))
		if len(st) != 3 || p.Get("Package") == "" {
			continue
		}
		in := Installed{Package: p.Get("Package"), Version: p.Get("Version"), Architecture: p.Get("Architecture"), State: st[2]}
		switch in.State {
		case "not-installed":
			continue
		case "installed", "config-files":
		default:
			inv.Broken = append(inv.Broken, in.Package)
		}
		if st[1] == "reinstreq" {
			inv.Broken = append(inv.Broken, in.Package)
		}
		inv.Packages[in.Package] = in
	}
	return inv, nil
}

// inventory returns the parsed status file, re-reading it only when its
// size or modification time changed (dpkg replaces the file on every
// change): an idle check does not parse a large status file again.
func (a *Agent) inventory() (*Inventory, error) {
	stamp := statusStamp(a.cfg.AdminDir)
	a.invMu.Lock()
	defer a.invMu.Unlock()
	if stamp != "" && stamp == a.invStamp && a.inv != nil {
		return a.inv, nil
	}
	inv, err := ReadInventory(a.cfg.AdminDir)
	if err != nil {
		return nil, err
	}
	a.inv, a.invStamp = inv, stamp
	return inv, nil
}

// statusStamp identifies the current status file by size and mtime.
func statusStamp(adminDir string) string {
	fi, err := os.Stat(filepath.Join(adminDir, "status"))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

// pendingUpdates reports whether ADMINDIR/updates holds journal entries of
// an interrupted dpkg run.
func pendingUpdates(adminDir string) bool {
	ents, err := os.ReadDir(filepath.Join(adminDir, "updates"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "tmp.") {
			return true
		}
	}
	return false
}
