package acl

import (
	"os"
	"strings"
	"testing"
)

// TestREADMERules keeps README's "ACL users" rule list equal to the code:
// an operator copies it into an ACL SETUSER when a user lost its rules.
func TestREADMERules(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i := strings.Index(s, "\n## ACL users\n")
	if i < 0 {
		t.Fatal(`README.md has no "## ACL users" section`)
	}
	section := s[i:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		section = section[:j+1]
	}
	for name, r := range map[string]string{
		"agent, sentinel mode, on redis-servers": AgentRules(ModeSentinel, Redis).Rules,
		"agent, cluster mode, on redis-servers":  AgentRules(ModeCluster, Redis).Rules,
		"agent, on Sentinels":                    AgentRules(ModeSentinel, Sentinel).Rules,
		"replication, on redis-servers":          ReplicationRules().Rules,
		"Sentinel, on redis-servers":             SentinelRules(Redis).Rules,
		"Sentinel, on Sentinels":                 SentinelRules(Sentinel).Rules,
	} {
		if !strings.Contains(section, name+":\n"+r+"\n") {
			t.Errorf("README's ACL users section does not list %q as:\n%s:\n%s", name, name, r)
		}
	}
}
