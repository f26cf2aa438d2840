package nodesconf

import (
	"fmt"
	"strings"
)

// ParseError says which line of a nodes.conf is not what Redis writes, what
// was found there and what was expected.
type ParseError struct {
	// Line is 1-based; 0 when the problem is the file as a whole.
	Line int
	// Text is the offending field or line, as found.
	Text string
	// Want says what was expected instead.
	Want string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "want " + e.Want
	}
	return fmt.Sprintf("line %d: got %q, want %s", e.Line, clip(e.Text), e.Want)
}

// clip keeps error messages one readable line even for a long slot list;
// the end stays because that is where a cut-short line shows.
func clip(s string) string {
	if len(s) <= 72 {
		return s
	}
	return s[:32] + "..." + s[len(s)-37:]
}

// ConflictError is returned by Rewrite when two different nodes would end up
// at the same address. Nothing is rewritten: writing it would make Redis talk
// to one node believing it is the other, which is the failure this package
// exists to prevent.
type ConflictError struct {
	Addr  string   // host:port
	Nodes []string // "<id> (<hostname>)" of each node at Addr
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("nodes %s would all be at %s after the rewrite: resolve the duplicate (a stale node: CLUSTER FORGET it on the live nodes; a stale DNS answer: retry once DNS is current)",
		strings.Join(e.Nodes, " and "), e.Addr)
}
