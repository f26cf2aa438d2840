package demo

import (
	"sort"
	"time"
)

// entries collects timeline lines and prints them in time order: what a
// reader wants is the sequence, whichever source observed it.
type entries struct {
	t0    time.Time
	items []entry
}

type entry struct {
	at   time.Time
	text string
}

// add records text at t; a zero t (never observed) is left out.
func (e *entries) add(t time.Time, text string) {
	if t.IsZero() {
		return
	}
	e.items = append(e.items, entry{t, text})
}

func (e *entries) print(p *Printer) {
	sort.SliceStable(e.items, func(i, j int) bool { return e.items[i].at.Before(e.items[j].at) })
	for _, it := range e.items {
		p.Info("  %-10s %s", at(it.at, e.t0), it.text)
	}
}
