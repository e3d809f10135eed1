package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
)

// runMainEnv makes the test binary run the CLI's main instead of the tests,
// so that a test can run `waymark` as a process of its own and read its exit
// code, without building it first.
const runMainEnv = "WAYMARK_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// An engine that dies under `waymark dev` ends it at once, saying which one,
// with a non-zero exit code, rather than leaving it to answer 503s in
// silence.
func TestDevExitsWhenAnEngineDies(t *testing.T) {
	for _, engine := range []struct {
		name string
		pid  func(devstack.State) int
	}{
		{"DynamoDB Local", func(s devstack.State) int { return s.DynamoDBPID }},
		{"local-kms", func(s devstack.State) int { return s.KMSPID }},
	} {
		t.Run(engine.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "dev", "--port", "0", "--quiet")
			cmd.Env = append(os.Environ(), runMainEnv+"=1", "WAYMARK_STATE_DIR="+dir)
			stdout := &watchedBuffer{want: "Press Ctrl-C to stop.", seen: make(chan struct{})}
			var stderr watchedBuffer
			cmd.Stdout, cmd.Stderr = stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			exited := make(chan struct{})
			go func() {
				waitErr = cmd.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})

			select {
			case <-stdout.seen:
			case <-exited:
				t.Fatalf("waymark dev exited before it was ready (%v):\n%s\n%s", waitErr, stdout, &stderr)
			case <-time.After(3 * time.Minute):
				t.Fatalf("waymark dev not ready:\n%s\n%s", stdout, &stderr)
			}
			state, err := devstack.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			pid := engine.pid(state)
			if pid <= 0 || pid == cmd.Process.Pid {
				t.Fatalf("state file names engine process %d", pid)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()

			// Stopping the other engine takes a moment; a stack that keeps
			// quiet would never exit.
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("waymark dev still running 30 s after %s died:\n%s\n%s", engine.name, stdout, &stderr)
			}
			t.Logf("exited %v after %s was killed", time.Since(killed).Round(time.Millisecond), engine.name)
			var exit *exec.ExitError
			if !errors.As(waitErr, &exit) || exit.ExitCode() != exitFail {
				t.Errorf("exit: %v, want exit code %d", waitErr, exitFail)
			}
			want := "waymark: the local stack failed: localstack: " + engine.name + " exited on its own (signal: killed)"
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, &stderr)
			}
			if _, err := os.Stat(dir + "/" + devstack.StateFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file left behind: %v", err)
			}
		})
	}
}

// watchedBuffer collects a process's output and closes seen (when set) once
// the output holds want.
type watchedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	want   string
	seen   chan struct{}
	closed bool
}

func (b *watchedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.seen != nil && !b.closed && strings.Contains(b.buf.String(), b.want) {
		close(b.seen)
		b.closed = true
	}
	return len(p), nil
}

func (b *watchedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
