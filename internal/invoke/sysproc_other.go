//go:build unix && !linux

package invoke

import "syscall"

// sysProcAttr puts the emulator in its own process group, so Stop ends the
// function it started with it. Only Linux can also have the kernel kill it
// when its parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
