package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "nodes.conf")
	if err := os.WriteFile(p, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	written, err := Write(p, []byte("new\n"), 0o600)
	if err != nil || !written {
		t.Fatalf("first write: written=%v err=%v", written, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want the old file's 0640", st.Mode().Perm())
	}
	if got, _ := os.ReadFile(p); string(got) != "new\n" {
		t.Errorf("content = %q, want %q", got, "new\n")
	}
	written, err = Write(p, []byte("new\n"), 0o600)
	if err != nil || written {
		t.Errorf("identical content: written=%v err=%v, want no write", written, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only nodes.conf (temp file left behind?)", len(entries))
	}
	fresh := filepath.Join(dir, "new.conf")
	if _, err := Write(fresh, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode = %v, want 0600", st.Mode().Perm())
	}
}
