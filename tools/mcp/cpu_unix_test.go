//go:build unix

package mcp_test

import (
	"syscall"
	"time"
)

// processCPU is the process's user+system CPU time. Client and server run in
// this process, so per op it is the work a call costs on both sides; unlike
// ns/op it does not grow with other processes' load on a shared machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
