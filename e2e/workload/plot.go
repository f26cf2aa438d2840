package workload

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotTimeline draws one scenario as a PNG: write latency of every
// acknowledged write over time (one series per history, log scale), failed
// writes as crosses along the top, the test's marks (fault, heal) as red
// vertical lines and observed role changes (a pod becoming a writable
// master, or losing it) as blue ones.
func PlotTimeline(path, title string, hs []History, tl Timeline) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "write latency (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	origin := tl.Start
	top := 1.0
	for _, h := range hs {
		for _, o := range h.Ops {
			top = math.Max(top, float64(o.Latency().Microseconds())/1000)
		}
	}
	top *= 2
	palette := []color.RGBA{{0, 114, 178, 255}, {0, 158, 115, 255}, {213, 94, 0, 255}, {204, 121, 167, 255}, {86, 180, 233, 255}}
	for i, h := range hs {
		var ok, bad plotter.XYs
		for _, o := range h.Ops {
			x := o.End.Sub(origin).Seconds()
			if o.Acked(h.Mode) {
				ok = append(ok, plotter.XY{X: x, Y: math.Max(0.01, float64(o.Latency().Microseconds())/1000)})
			} else {
				bad = append(bad, plotter.XY{X: x, Y: top})
			}
		}
		c := palette[i%len(palette)]
		if len(ok) > 0 {
			s, err := plotter.NewScatter(ok)
			if err != nil {
				return err
			}
			s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(1.2), Shape: draw.CircleGlyph{}}
			p.Add(s)
			p.Legend.Add(h.Name+" acked", s)
		}
		if len(bad) > 0 {
			s, err := plotter.NewScatter(bad)
			if err != nil {
				return err
			}
			s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2), Shape: draw.CrossGlyph{}}
			p.Add(s)
			p.Legend.Add(h.Name+" not acked (top)", s)
		}
	}
	vline := func(x float64, c color.Color, dashed bool) error {
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0.01}, {X: x, Y: top}})
		if err != nil {
			return err
		}
		l.Color = c
		if dashed {
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		}
		p.Add(l)
		return nil
	}
	var lx plotter.XYs
	var lt []string
	for _, m := range tl.Marks {
		x := m.At.Sub(origin).Seconds()
		if err := vline(x, color.RGBA{200, 0, 0, 255}, false); err != nil {
			return err
		}
		lx, lt = append(lx, plotter.XY{X: x, Y: top / 1.5}), append(lt, m.What)
	}
	a := Analyze(tl, 1e9, 0)
	seen := map[string]bool{}
	for _, rc := range a.RoleChanges {
		if !seen[rc.Pod] {
			seen[rc.Pod] = true // a pod's first observation is no change
			continue
		}
		x := rc.At.Sub(origin).Seconds()
		if err := vline(x, color.RGBA{0, 0, 200, 255}, true); err != nil {
			return err
		}
		what := rc.Pod + " " + rc.Role
		if rc.Writable {
			what += " (writable)"
		}
		lx, lt = append(lx, plotter.XY{X: x, Y: 0.02 * math.Pow(3, float64(len(lx)%4))}), append(lt, what)
	}
	if len(lx) > 0 {
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: lx, Labels: lt})
		if err != nil {
			return err
		}
		p.Add(labels)
	}
	if err := p.Save(28*vg.Centimeter, 14*vg.Centimeter, path); err != nil {
		return fmt.Errorf("save timeline %s: %w", path, err)
	}
	return nil
}
