// Package container proves, without a container engine, what the static
// image in the repository's Dockerfile relies on: serve built with
// CGO_ENABLED=0 runs from a root that holds nothing but the binary, as a
// non-root user, configured only by environment, and drains on SIGTERM.
package container
