package demo

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Printer writes the narration: one line per check with ✓ or ✗ and its
// timing, indented details, and a summary table at the end. It counts
// failures so the run can exit non-zero.
type Printer struct {
	mu      sync.Mutex
	w       io.Writer
	failed  int
	timings []Timing
}

// Timing is one row of the summary table.
type Timing struct {
	What     string
	Took     time.Duration
	Baseline string // what the same thing costs without the agent, if known
}

// NewPrinter writes to w.
func NewPrinter(w io.Writer) *Printer { return &Printer{w: w} }

// Section starts a numbered step.
func (p *Printer) Section(n, total int, title string) {
	p.printf("\n[%d/%d] %s\n", n, total, title)
}

// Sub starts a part of a step.
func (p *Printer) Sub(title string) { p.printf("\n  %s\n", title) }

// OK prints a passed check; took is left out when zero.
func (p *Printer) OK(what string, took time.Duration) { p.line("✓", what, took) }

// Fail prints a failed check and counts it.
func (p *Printer) Fail(what string, err error) {
	p.mu.Lock()
	p.failed++
	p.mu.Unlock()
	p.printf("  ✗ %s: %v\n", what, err)
}

// Check prints ✓ when err is nil, else ✗ with the error; it returns err.
func (p *Printer) Check(what string, took time.Duration, err error) error {
	if err != nil {
		p.Fail(what, err)
		return err
	}
	p.OK(what, took)
	return nil
}

// Info prints an indented detail line.
func (p *Printer) Info(format string, args ...any) {
	p.printf("    "+format+"\n", args...)
}

// Block prints multi-line text (a status table) indented.
func (p *Printer) Block(text string) {
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		p.printf("    %s\n", l)
	}
}

// Record adds a row to the summary table.
func (p *Printer) Record(what string, took time.Duration, baseline string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timings = append(p.timings, Timing{What: what, Took: took, Baseline: baseline})
}

// Failed is the number of failed checks so far.
func (p *Printer) Failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// Summary prints the recorded timings as a table.
func (p *Printer) Summary() {
	p.mu.Lock()
	rows := append([]Timing(nil), p.timings...)
	p.mu.Unlock()
	w := 0
	for _, r := range rows {
		w = max(w, len([]rune(r.What)))
	}
	for _, r := range rows {
		base := ""
		if r.Baseline != "" {
			base = "   (" + r.Baseline + ")"
		}
		p.printf("  %-*s %9s%s\n", w, r.What, fmtDur(r.Took), base)
	}
}

func (p *Printer) line(mark, what string, took time.Duration) {
	if took > 0 {
		p.printf("  %s %-58s %8s\n", mark, what, fmtDur(took))
		return
	}
	p.printf("  %s %s\n", mark, what)
}

func (p *Printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

// fmtDur rounds for people: 85ms, 1.24s, 1m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDur(-d)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		m := int(d / time.Minute)
		return fmt.Sprintf("%dm%02ds", m, int((d-time.Duration(m)*time.Minute)/time.Second))
	}
}

// at formats an instant relative to the fault: "+1.24s".
func at(t, t0 time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := t.Sub(t0)
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}
