package secrets

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
)

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "password")
	cases := map[string]struct {
		content string
		want    string
		wantErr string
	}{
		"trailing newline": {content: "s3cret\n", want: "s3cret"},
		"empty":            {content: "", wantErr: "is empty"},
		"two lines":        {content: "a\nb\n", wantErr: "more than one line"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPasswordFile(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want one naming %s and %q", err, p, tc.wantErr)
				}
				if strings.Contains(err.Error(), tc.content) && tc.content != "" {
					t.Errorf("error leaks the file content: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ReadPasswordFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestPasswordWatchSecretSwap(t *testing.T) {
	// A Secret volume: key -> ..data/key, ..data -> ..<timestamp>; an update
	// swaps the ..data symlink.
	dir := t.TempDir()
	mk := func(ts, pw string) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "password"), []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mk("..v1", "first")
	if err := os.Symlink("..data/password", filepath.Join(dir, "password")); err != nil {
		t.Fatal(err)
	}
	pw, err := NewPassword(filepath.Join(dir, "password"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pw.Run(ctx, zerolog.Nop(), clock.RealClock{}, time.Hour) }()
	// Give the watcher a moment to register; the swap below must be seen by
	// fsnotify, not by the (hour-long) periodic re-read.
	deadline := time.Now().Add(5 * time.Second)
	for pw.Get() == "first" && time.Now().Before(deadline) {
		mk("..v"+time.Now().Format("150405.000000"), "second")
		select {
		case <-pw.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got := pw.Get(); got != "second" {
		t.Fatalf("password after Secret swap = %q, want %q", got, "second")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
