package bump

import (
	"fmt"
	"io"
	"strings"
)

// Hunk is a run of changed lines: Old (starting at line OldLine) became New
// (starting at NewLine). Lines are shown without their line endings.
type Hunk struct {
	OldLine int      `json:"old_line"`
	NewLine int      `json:"new_line"`
	Old     []string `json:"old"`
	New     []string `json:"new"`
}

// diffLines finds the changed lines between a and b: the common head and
// tail are cut off and the middle is compared line by line (a longest
// common subsequence, when it is small enough; one hunk otherwise).
func diffLines(a, b []byte) []Hunk {
	al, bl := splitLines(string(a)), splitLines(string(b))
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	am, bm := al[head:len(al)-tail], bl[head:len(bl)-tail]
	if len(am)*len(bm) > maxDiffCells {
		return []Hunk{{OldLine: head + 1, NewLine: head + 1, Old: am, New: bm}}
	}
	// lcs[i][j]: length of the longest common subsequence of am[i:], bm[j:].
	lcs := make([][]int, len(am)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(bm)+1)
	}
	for i := len(am) - 1; i >= 0; i-- {
		for j := len(bm) - 1; j >= 0; j-- {
			if am[i] == bm[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []Hunk
	var cur *Hunk
	i, j := 0, 0
	for i < len(am) || j < len(bm) {
		if i < len(am) && j < len(bm) && am[i] == bm[j] {
			cur = nil
			i, j = i+1, j+1
			continue
		}
		if cur == nil {
			out = append(out, Hunk{OldLine: head + 1 + i, NewLine: head + 1 + j})
			cur = &out[len(out)-1]
		}
		if j < len(bm) && (i == len(am) || lcs[i][j+1] >= lcs[i+1][j]) {
			cur.New = append(cur.New, bm[j])
			j++
		} else {
			cur.Old = append(cur.Old, am[i])
			i++
		}
	}
	return out
}

// maxDiffCells bounds the work of the line comparison.
const maxDiffCells = 1 << 20

// splitLines splits text into lines without their endings ("\n", "\r\n").
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
	}
	return lines
}

// WriteDiff shows every file and line the plan changes:
//
//	DEBIAN/control:2
//	- Version: 0.1
//	+ Version: 0.2
func (p *Plan) WriteDiff(w io.Writer) error {
	for _, f := range p.Files {
		for _, h := range f.Hunks {
			if _, err := fmt.Fprintf(w, "%s:%d\n", f.Path, h.OldLine); err != nil {
				return err
			}
			for _, l := range h.Old {
				fmt.Fprintf(w, "- %s\n", l)
			}
			for _, l := range h.New {
				if _, err := fmt.Fprintf(w, "+ %s\n", l); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
