package invoke

import "syscall"

// sysProcAttr puts the emulator in its own process group, so Stop ends the
// function it started with it, and has the kernel kill it if the process that
// started it dies without calling Stop (an interrupted `waymark invoke`, a
// test binary that panics). The death signal is tied to the OS thread that
// forked the child; Go only retires threads whose goroutine locked them,
// which nothing here does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
