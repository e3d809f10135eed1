# Waymark — the two commands first: `make dev` runs it locally, `make test`
# runs every test. Both set up what they need on a fresh machine.

GO ?= go
# The approved toolchain (go.mod's toolchain line): the machine's own Go may be
# older and set GOTOOLCHAIN=local, which ignores that line, so every go command
# run from here asks for it explicitly (fetched once from the module proxy).
export GOTOOLCHAIN := go1.27.3
# Go packages of the project. `./...` is avoided because node_modules holds
# Go template files of the CDK CLI that are not packages.
PKGS := ./cmd/... ./docs/... ./functions/... ./internal/... ./infra/...
# Test targets beyond the Go tests; fragments in make/ add theirs.
TEST_TARGETS :=

-include make/*.mk

.PHONY: dev test go-test lint unit

## dev: run Waymark locally (DynamoDB Local + local-kms + the API on 127.0.0.1:3000)
dev:
	$(GO) run ./cmd/waymark dev $(ARGS)

## test: formatting, vet, and every test (unit, integration against the local engines, infra, ...)
test: lint go-test $(TEST_TARGETS)

go-test: build
	$(GO) test -count=1 -timeout 20m $(PKGS)

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l cmd docs functions internal infra snippet bench 2>/dev/null); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## unit: the tests that need no local engine
unit:
	$(GO) test -count=1 ./internal/waymark/... ./internal/envelope/... ./internal/gateway/...
