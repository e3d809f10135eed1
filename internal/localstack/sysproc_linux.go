package localstack

import "syscall"

// sysProcAttr puts an engine in its own process group, so Stop can end it
// with everything it started, and has the kernel kill it if the process that
// started it dies without calling Stop (a test binary that panics or is
// killed). The death signal is tied to the OS thread that forked the child;
// Go only retires threads whose goroutine locked them, which nothing here does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
