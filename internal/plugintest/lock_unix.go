//go:build unix

package plugintest

import (
	"os"
	"syscall"
)

// lock takes an exclusive flock on path (released when the process
// exits, whatever happens); it does not lock if the file cannot be
// opened: the build then only costs more.
func lock(path string) (unlock func()) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() } // closing the file releases the lock
}
