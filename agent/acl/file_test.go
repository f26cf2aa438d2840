package acl

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFile(t *testing.T) {
	got, err := ParseFile([]byte("# apps\n\nuser app on >p1 ~app:* +@read +@write\r\nuser  reader on #0a1b ~* +get\n"), "--acl-file f", []string{"ha-agent"})
	if err != nil {
		t.Fatal(err)
	}
	want := []FileUser{
		{Name: "app", Rules: []string{"on", ">p1", "~app:*", "+@read", "+@write"}},
		{Name: "reader", Rules: []string{"on", "#0a1b", "~*", "+get"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseFile -want +got:\n%s", diff)
	}
	bad := map[string]struct {
		file, want string
	}{
		"NotAUserLine":  {"requirepass x\n", "--acl-file f line 1 is not a user line"},
		"NoName":        {"user\n", "line 1 is not a user line"},
		"DefaultUser":   {"user default on nopass\n", "line 1 defines the default user"},
		"ManagedUser":   {"# x\nuser ha-agent on >p +@all\n", `line 2 defines "ha-agent", a user the agent manages`},
		"Duplicate":     {"user a on\nuser a off\n", `lines 1 and 2 both define "a"`},
		"QuoteInRule":   {"user a on >p\"w\n", "line 1: a rule holds a quote"},
		"ControlInLine": {"user a on >p\x01\n", "line 1 holds a control character"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.file), "--acl-file f", []string{"ha-agent"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseFile(%q) = %v, want %q", tc.file, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), ">p") {
				t.Errorf("the error shows the line's text (a password): %v", err)
			}
		})
	}
}

func TestReplaceFileBlock(t *testing.T) {
	a := []FileUser{{Name: "a", Rules: []string{"on", ">p"}}}
	b := []FileUser{{Name: "b", Rules: []string{"on", ">q"}}, {Name: "c", Rules: []string{"off"}}}
	inc := "replicaof x 6379\nmasterauth p\n"
	one := ReplaceFileBlock(inc, a)
	if want := inc + fileBegin + "\nuser a on >p\n" + fileEnd + "\n"; one != want {
		t.Errorf("block appended:\n%s\nwant:\n%s", one, want)
	}
	two := ReplaceFileBlock(one+"requirepass p\n", b)
	if want := inc + fileBegin + "\nuser b on >q\nuser c off\n" + fileEnd + "\nrequirepass p\n"; two != want {
		t.Errorf("block replaced in place:\n%s\nwant:\n%s", two, want)
	}
	if diff := cmp.Diff([]string{"b", "c"}, FileBlockNames(two)); diff != "" {
		t.Errorf("FileBlockNames -want +got:\n%s", diff)
	}
	if got := ReplaceFileBlock(two, nil); got != inc+"requirepass p\n" {
		t.Errorf("no users: block removed:\n%s", got)
	}
	if FileBlockNames(inc) != nil {
		t.Error("names from an include without a block")
	}
}
