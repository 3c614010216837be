//go:build !unix

package plugintest

func lock(string) func() { return func() {} }
