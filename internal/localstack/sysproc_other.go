//go:build unix && !linux

package localstack

import "syscall"

// GroupAttr puts a child (an engine, the Lambda emulator) in its own
// process group, so StopGroup can end it with everything it started. Only Linux can also have the kernel kill it when
// its parent dies; elsewhere a crashed parent leaves the engines to be ended
// by hand.
func GroupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
