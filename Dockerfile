# syntax=docker/dockerfile:1
#
# agentrt images. Two targets:
#
#   static (default)  serve with compiled-in agents: CGO_ENABLED=0 and
#                     -tags agentrt_nodev (no dev workspace), a static binary
#                     on an empty base (scratch) with passwd/group for the
#                     non-root user 65532 and the CA bundle, nothing else.
#                     deploy/container/Containerfile is the same stage; its
#                     test builds and runs it, and keeps the two equal.
#     docker build -t agentrt .
#     docker run -p 8080:8080 -e AGENTRT_AGENT=echo agentrt
#     docker build --build-arg SERVE=./examples/customserve -t greeter .
#     docker run -p 8080:8080 -e AGENTRT_AGENT=greeter greeter
#
#   plugin            serve with cgo on distroless/base (glibc), for agents
#                     loaded from -buildmode=plugin .so files. The plugin is
#                     built in the same stage as serve, with the same Go
#                     toolchain, flags and module versions, which is what Go
#                     requires for plugin.Open to succeed.
#     docker build --target plugin --build-arg PLUGIN=./examples/plugin -t agentrt-plugin .
#     docker run -p 8080:8080 agentrt-plugin
#
# Configuration is by environment only (AGENTRT_*, DATABRICKS_*); see
# docs/deploy.md. SIGTERM drains in-flight requests and streams.

ARG GO_IMAGE=golang:1.26-trixie

FROM ${GO_IMAGE} AS source
WORKDIR /src
ENV GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .

# Compiled-in agents. SERVE is the main package to build: ./cmd/serve, or
# your own serve with your agent imported (see examples/customserve).
# -trimpath keeps build paths out of the binary. TAGS=agentrt_nodev leaves
# the dev workspace (serve --dev, SQLite) out; --build-arg TAGS= keeps it.
# rootfs.sh lays out everything the image holds in /rootfs.
FROM source AS build-static
ARG SERVE=./cmd/serve
ARG TAGS=agentrt_nodev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags "${TAGS}" -ldflags="-s -w" -o /out/serve "${SERVE}" && \
    sh deploy/container/rootfs.sh /rootfs /out/serve

# serve and the plugin share one toolchain, one module graph and one flag
# set (-trimpath), so the build-info check and the runtime's package hashes
# agree. The host is not stripped: plugin.Open resolves symbols against it.
FROM source AS build-plugin
ARG SERVE=./cmd/serve
ARG PLUGIN=./examples/plugin
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -o /out/serve "${SERVE}" && \
    mkdir -p /out/plugins && \
    CGO_ENABLED=1 go build -trimpath -buildmode=plugin -o /out/plugins/agent.so "${PLUGIN}" && \
    if [ -f "${PLUGIN}/agent.yaml" ]; then cp "${PLUGIN}/agent.yaml" /out/plugins/agent.yaml; fi

# glibc matches the trixie builder (same Debian release).
FROM gcr.io/distroless/base-debian13:nonroot AS plugin
COPY --from=build-plugin /out/serve /serve
COPY --from=build-plugin /out/plugins /plugins
USER 65532:65532
EXPOSE 8080
ENV AGENTRT_ADDR=:8080 AGENTRT_AGENT=/plugins/agent.so
ENTRYPOINT ["/serve"]

# Last stage: the default target. deploy/container/Containerfile, with
# COPY --from=build-static (a test checks they agree).
FROM scratch AS static
COPY --from=build-static /rootfs/ /
USER 65532:65532
EXPOSE 8080
ENV AGENTRT_ADDR=:8080 AGENTRT_AGENT=echo AGENTRT_STORE=sqlite:/var/lib/agentrt/state.db
ENTRYPOINT ["/serve"]
