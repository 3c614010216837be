# agentrt developer entry points. `make dev` serves an agent locally;
# `make test` is what CI runs (.ci/run).

GO      ?= go
PKGS    ?= ./...
BIN     := bin/serve
# The production build: no dev workspace (serve --dev); see
# runtime/cli/nodev.go and docs/deploy.md.
PROD_TAGS := agentrt_nodev
PODMAN  ?= podman
FUZZTIME ?= 20s

.PHONY: test vet fmt-check go-test js-test dev build build-dev build-prod image bench bench-load fuzz clean plugin

test: vet fmt-check go-test js-test

# vet, js-test and deploy/container's image test all compile the module
# graph as the image does (CGO_ENABLED=0 -trimpath; build tags do not change
# the cache keys of dependencies), so a fresh CI machine compiles it once in
# that configuration, and once more with -race.
STATIC_ENV := CGO_ENABLED=0

vet:
	$(STATIC_ENV) $(GO) vet -trimpath $(PKGS)
	$(STATIC_ENV) $(GO) vet -trimpath -tags $(PROD_TAGS) ./runtime/cli ./cmd/serve

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './test/js/node_modules/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# The default response store is SQLite in the state directory: tests that
# start serve get a fresh one, not the user's.
go-test:
	state=$$(mktemp -d) && XDG_STATE_HOME=$$state $(GO) test -race $(PKGS); rc=$$?; rm -rf "$$state"; exit $$rc

# The official openai npm client against the production serve, and the MCP
# Inspector (on the Node 22 of test/js/mcp-inspector) against the dev
# workspace, which the test builds.
# The openai npm client, the AI SDK and the MCP Inspector against the
# production serve (bin/serve-prod) and, for `serve --dev`, a static build
# with the dev workspace (bin/serve-dev, compiled like vet: no extra
# dependency compile).
js-test: build-prod build-dev
	cd test/js && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } \
	  && { [ -d mcp-inspector/node_modules ] || (cd mcp-inspector && npm install --no-save --no-audit --no-fund); } \
	  && SERVE_BIN=$(CURDIR)/bin/serve-prod DEV_SERVE_BIN=$(CURDIR)/bin/serve-dev node --test

# Rebuilds and restarts the server when a .go file changes (cmd/devwatch);
# a failed build prints the compiler's errors and keeps the last server. The
# dev workspace runs once, in devwatch, and keeps its state across restarts.
dev:
	$(GO) run ./cmd/devwatch -- --dev --agent assistant

build:
	$(GO) build -o $(BIN) ./cmd/serve

# serve with the dev workspace, compiled as vet compiles (for js-test).
build-dev:
	$(STATIC_ENV) $(GO) build -trimpath -o bin/serve-dev ./cmd/serve

# What the image holds: static, stripped, without the dev workspace.
build-prod:
	$(STATIC_ENV) $(GO) build -trimpath -tags $(PROD_TAGS) -ldflags='-s -w' -o bin/serve-prod ./cmd/serve

# The static image from deploy/container/Containerfile, without a registry
# (the Dockerfile's default target is the same image, built in Docker).
image: build-prod
	rm -rf bin/image
	sh deploy/container/rootfs.sh bin/image/rootfs bin/serve-prod
	$(PODMAN) build -t agentrt -f deploy/container/Containerfile bin/image

# examples/plugin as a Go plugin, with its agent.yaml beside it. Build serve
# with the same toolchain and flags (make build), then:
#   bin/serve --agent ./bin/plugin.so
plugin:
	CGO_ENABLED=1 $(GO) build -buildmode=plugin -o bin/plugin.so ./examples/plugin
	cp examples/plugin/agent.yaml bin/agent.yaml

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Issue 17's load run (test/load -scenario echo; BENCHMARKS.md): serve
# --agent echo against a bare gin handler, each in its own process, 32
# keep-alive connections, alternating rounds; prints req/s, p50/p99 and the
# median ratio, for an anonymous caller and for a verified bearer token.
# More flags: make bench-load LOAD_FLAGS='-rounds 5 -profile /tmp/prof'.
LOAD_FLAGS ?=
bench-load:
	$(GO) build -o bin/load ./test/load
	state=$$(mktemp -d) && XDG_STATE_HOME=$$state bin/load -scenario echo $(LOAD_FLAGS) \
	  && XDG_STATE_HOME=$$state bin/load -scenario echo -caller verified $(LOAD_FLAGS); rc=$$?; rm -rf "$$state"; exit $$rc

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) ./internal/httpapi/

clean:
	rm -rf bin
