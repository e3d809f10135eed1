//go:build unix && !linux

package localstack

import "syscall"

// sysProcAttr puts an engine in its own process group, so Stop can end it
// with everything it started. Only Linux can also have the kernel kill it when
// its parent dies; elsewhere a crashed parent leaves the engines to be ended
// by hand.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
