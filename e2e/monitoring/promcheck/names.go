package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// names parses each expression on stdin (a JSON list) with Prometheus' own
// parser and prints, in the same order, the metric names its selectors
// name. A selector without a fixed name (a regexp on __name__) is an
// error: its series could not be checked.
func names(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("read a JSON list of expressions from stdin: %w", err)
	}
	p := parser.NewParser(parser.Options{})
	res := make([][]string, 0, len(exprs))
	for _, e := range exprs {
		ast, err := p.ParseExpr(e)
		if err != nil {
			return fmt.Errorf("parse %q: %w", e, err)
		}
		seen := map[string]bool{}
		var selErr error
		parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type != labels.MatchEqual {
					selErr = fmt.Errorf("%q: selector %s matches names by %s, which cannot be checked", e, vs, m.Type)
				}
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name == "" && selErr == nil {
				selErr = fmt.Errorf("%q: selector %s has no metric name", e, vs)
			}
			seen[name] = true
			return nil
		})
		if selErr != nil {
			return selErr
		}
		list := make([]string, 0, len(seen))
		for n := range seen {
			list = append(list, n)
		}
		sort.Strings(list)
		res = append(res, list)
	}
	return json.NewEncoder(out).Encode(res)
}
