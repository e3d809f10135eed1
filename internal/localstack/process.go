package localstack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Engine is one running local engine: a child process in its own process
// group.
type Engine struct {
	// Endpoint is the engine's URL on the loopback interface.
	Endpoint string

	name     string
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited and been reaped
	waitErr  error         // the process's exit status; read only after done
	tail     *TailBuffer
	tempDir  string // removed by Stop when set
	stopOnce sync.Once
	stopErr  error
}

const (
	// startTimeout bounds how long an engine may take to announce its port
	// and answer. DynamoDB Local is ready in about 2 s on an idle machine, but
	// `go test ./...` may start several JVMs at once on two cores.
	startTimeout = 90 * time.Second
	// stopGrace is how long an engine gets to exit on SIGTERM before it is
	// killed.
	stopGrace = 5 * time.Second
	// pollInterval is the pause between two readiness probes.
	pollInterval = 50 * time.Millisecond
)

// engineSpec says how to start one engine and how to tell it is ready.
type engineSpec struct {
	name string
	cmd  *exec.Cmd
	// portLine finds, in the engine's output, the line that announces the
	// port the kernel gave it; its first group is the port.
	portLine *regexp.Regexp
	// probe asks the engine at endpoint one cheap question; nil means ready.
	probe   func(ctx context.Context, endpoint string) error
	tempDir string
	log     io.Writer
}

// startEngine starts the process and returns once it answers at its
// endpoint. The engines are given port 0 and tell which port they got: no
// other process can take the port between choosing and binding it, which
// matters because go test starts packages (and so engines) in parallel.
func startEngine(ctx context.Context, spec engineSpec) (*Engine, error) {
	e := &Engine{
		name:    spec.name,
		cmd:     spec.cmd,
		done:    make(chan struct{}),
		tail:    NewTailBuffer(4 << 10),
		tempDir: spec.tempDir,
	}
	// One pipe for stdout and stderr: the reader below sees the lines in the
	// order the engine wrote them. An *os.File (rather than an io.Writer)
	// keeps exec from adding copy goroutines that Wait would wait for.
	pr, pw, err := os.Pipe()
	if err != nil {
		e.removeTemp()
		return nil, fmt.Errorf("localstack: %s: %w", e.name, err)
	}
	e.cmd.Stdout, e.cmd.Stderr = pw, pw
	e.cmd.SysProcAttr = GroupAttr()
	err = e.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		e.removeTemp()
		return nil, fmt.Errorf("localstack: start %s: %w", e.name, err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.done)
	}()
	ports := make(chan int, 1)
	go e.readOutput(pr, spec.portLine, spec.log, ports)

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := e.awaitReady(ctx, ports, spec.probe); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// awaitReady waits for the announced port, then probes until the engine
// answers, the process exits or ctx ends.
func (e *Engine) awaitReady(ctx context.Context, ports <-chan int, probe func(context.Context, string) error) error {
	select {
	case port := <-ports:
		e.Endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	case <-e.done:
		return e.exitedEarly()
	case <-ctx.Done():
		return e.notReady(ctx.Err())
	}
	for {
		err := probe(ctx, e.Endpoint)
		if err == nil {
			return nil
		}
		select {
		case <-time.After(pollInterval):
		case <-e.done:
			return e.exitedEarly()
		case <-ctx.Done():
			return e.notReady(fmt.Errorf("%w (last probe: %v)", ctx.Err(), err))
		}
	}
}

// exitedError describes an engine that exited while it was in use.
func (e *Engine) exitedError() error {
	return fmt.Errorf("localstack: %s exited on its own (%v); its last output:\n%s", e.name, e.waitErr, e.tail)
}

func (e *Engine) exitedEarly() error {
	return fmt.Errorf("localstack: %s exited before it was ready (%v); its last output:\n%s", e.name, e.waitErr, e.tail)
}

func (e *Engine) notReady(cause error) error {
	return fmt.Errorf("localstack: %s not ready: %w; its last output:\n%s", e.name, cause, e.tail)
}

// readOutput forwards the engine's output line by line to log and keeps its
// tail for error messages. It reads until the process and everything that
// inherited the pipe are gone, so the engine never blocks on a full pipe.
func (e *Engine) readOutput(r *os.File, portLine *regexp.Regexp, log io.Writer, ports chan<- int) {
	defer r.Close()
	br := bufio.NewReader(r)
	found := false
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			e.tail.Write(line)
			if log != nil {
				log.Write(line)
			}
			if !found {
				if m := portLine.FindSubmatch(line); m != nil {
					if port, convErr := strconv.Atoi(string(m[1])); convErr == nil && port > 0 {
						found = true
						ports <- port
					}
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// Stop ends the engine's process group: SIGTERM, then SIGKILL after a grace
// period, and waits for the process to be reaped. It may be called more than
// once. It reports an engine that had already exited on its own, since
// whatever used it saw failures.
func (e *Engine) Stop() error {
	e.stopOnce.Do(func() {
		defer e.removeTemp()
		select {
		case <-e.done:
			e.stopErr = fmt.Errorf("localstack: %s had exited on its own (%v)", e.name, e.waitErr)
			return
		default:
		}
		if err := StopGroup(e.cmd.Process.Pid, e.done, stopGrace); err != nil {
			e.stopErr = fmt.Errorf("localstack: stop %s: %w", e.name, err)
		}
	})
	return e.stopErr
}

// StopGroup ends the process group a child started with GroupAttr leads:
// SIGTERM, then SIGKILL after grace. The group, not just the process, so
// whatever the child started goes with it. done is closed once the child has
// been reaped; StopGroup returns after that.
func StopGroup(pid int, done <-chan struct{}, grace time.Duration) error {
	var err error
	if kerr := syscall.Kill(-pid, syscall.SIGTERM); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
		err = kerr
	}
	select {
	case <-done:
	case <-time.After(grace):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	return err
}

func (e *Engine) removeTemp() {
	if e.tempDir != "" {
		os.RemoveAll(e.tempDir)
	}
}

// TailBuffer keeps the last bytes written to it: the end of a child
// process's output, for error messages. It is safe for concurrent use.
type TailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// NewTailBuffer keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimRight(t.buf, "\n"))
}

// sharedLog serialises the lines of several engines onto one writer, which
// need not be safe for concurrent use.
type sharedLog struct {
	mu sync.Mutex
	w  io.Writer
}

func newSharedLog(w io.Writer) *sharedLog { return &sharedLog{w: w} }

// prefixed returns a writer for whole lines that go to the shared writer
// behind "[name] ", or nil when there is no shared writer.
func (l *sharedLog) prefixed(name string) io.Writer {
	if l.w == nil {
		return nil
	}
	return &prefixWriter{log: l, prefix: []byte("[" + name + "] ")}
}

type prefixWriter struct {
	log    *sharedLog
	prefix []byte
}

func (p *prefixWriter) Write(line []byte) (int, error) {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	if _, err := p.log.w.Write(append(append([]byte{}, p.prefix...), line...)); err != nil {
		return 0, err
	}
	return len(line), nil
}
