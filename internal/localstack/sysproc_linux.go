package localstack

import "syscall"

// GroupAttr puts a child (an engine, the Lambda emulator) in its own
// process group, so StopGroup can end it with everything it started, and has
// the kernel kill it if the process that started it dies without stopping it
// (a test binary that panics or is killed, an interrupted `waymark invoke`).
// The death signal is tied to the OS thread that forked the child; Go only
// retires threads whose goroutine locked them, which nothing here does.
func GroupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
