// Package container holds agentrt's static image and its tests. The image
// is Containerfile on an empty base, with the root file system rootfs.sh lays
// out: serve built with CGO_ENABLED=0 -tags agentrt_nodev, passwd and group
// for the non-root user 65532, and the CA bundle. The repository's Dockerfile
// ends in the same stage (a test keeps them equal).
//
// The tests build that image without a registry or a daemon (podman, on a
// scratch base), run it as uid 65532 configured only by environment, send it
// requests, stop it with SIGTERM while a stream is in flight, and check the
// stream completes and the container exits 0. They also check that the
// production build links no dev workspace and no SQLite.
package container
