package miniotest

import "syscall"

// sysProcAttr has the kernel kill MinIO when the thread that started it
// exits, so that no server outlives a crashed or timed-out test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
