package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// The verbs write their results to Env.Out and notes, warnings and
// progress to Env.Err, through these helpers: writeJSON for --json,
// jsonLines for one object per line, newTable for aligned columns, and
// fmt.Fprint* for plain lines.

// writeJSON writes v as indented JSON for scripts, without HTML escaping
// so that names and fields ("A <a@b.c>") read as they are.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonLines returns an encoder that writes one compact JSON object per
// line, without HTML escaping, for output that scripts read line by line.
func jsonLines(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// newTable returns a writer that aligns tab-separated columns, two spaces
// apart; Flush writes the table.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressPrinter redraws one status line on the terminal, at most every
// 100 ms.
func progressPrinter(env *Env, what string) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		now := env.Now()
		if now.Sub(last) < 100*time.Millisecond && done < total {
			return
		}
		last = now
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		fmt.Fprintf(env.Err, "\r\033[K%s %s / %s (%.0f%%)", what, humanBytes(done), humanBytes(total), pct)
	}
}
