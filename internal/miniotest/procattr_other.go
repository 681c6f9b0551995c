//go:build !linux

package miniotest

import "syscall"

// sysProcAttr: elsewhere a crashed test binary may leave MinIO running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
