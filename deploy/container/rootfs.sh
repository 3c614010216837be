#!/bin/sh
# rootfs.sh DIR SERVE lays out in DIR the root file system of agentrt's
# static image: the one definition of what the image holds, used by the
# Dockerfile's static stage and by deploy/container's test, whose
# Containerfile copies DIR to / on an empty (scratch) base.
#
#   /serve                              SERVE, the static binary (0755)
#   /etc/passwd, /etc/group             root, and nonroot (uid/gid 65532), the USER
#   /etc/ssl/certs/ca-certificates.crt  the build host's CA bundle (CA_CERTS), for TLS to the workspace
#   /tmp                                1777, for libraries that expect it
#   /var/lib/agentrt                    1777, the default SQLite response store (AGENTRT_STORE)
set -eu
[ $# -eq 2 ] || { echo "usage: rootfs.sh DIR SERVE" >&2; exit 2; }
dir=$1 serve=$2
here=$(dirname "$0")
certs=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -s "$certs" ]; then
  echo "rootfs.sh: no CA bundle at $certs: install Debian's ca-certificates or set CA_CERTS" >&2
  exit 1
fi
mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/var/lib/agentrt"
cp "$serve" "$dir/serve"
cp "$here/passwd" "$here/group" "$dir/etc/"
cp "$certs" "$dir/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$dir" "$dir/etc" "$dir/etc/ssl" "$dir/etc/ssl/certs" "$dir/serve"
chmod 0644 "$dir/etc/passwd" "$dir/etc/group" "$dir/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$dir/var" "$dir/var/lib"
chmod 1777 "$dir/tmp" "$dir/var/lib/agentrt"
