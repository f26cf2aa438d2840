package localkube

import (
	"os"
	"strings"
)

// TailFile returns the last n lines of a log file, or the read error as
// text: for error messages that point at a component's log.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
