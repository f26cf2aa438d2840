package kubelet

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.244.0.5", "NAME": "redis-0", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := map[string]struct{ in, want string }{
		"plain":          {"redis-server", "redis-server"},
		"known":          {"--bind $(POD_IP)", "--bind 10.244.0.5"},
		"two":            {"$(NAME).$(POD_IP)", "redis-0.10.244.0.5"},
		"unknown kept":   {"$(NOPE) x", "$(NOPE) x"},
		"escaped":        {"$$(POD_IP)", "$(POD_IP)"},
		"double dollar":  {"a$$b", "a$b"},
		"lone dollar":    {"cost $5", "cost $5"},
		"trailing":       {"x$", "x$"},
		"unclosed":       {"$(POD_IP", "$(POD_IP"},
		"empty value":    {"[$(EMPTY)]", "[]"},
		"empty name":     {"$()", "$()"},
		"shell var kept": {"${HOME}", "${HOME}"},
	}
	for name, tc := range tests {
		if got := expand(tc.in, lookup); got != tc.want {
			t.Errorf("%s: expand(%q) = %q, want %q", name, tc.in, got, tc.want)
		}
	}
}
