# Mutation testing with gremlins (pinned in go.mod's tool block). Included by
# the top-level Makefile.
#
#   make mutate                           every package below, one after another
#   make mutate MUTATE_PKGS=internal/waymark   only some of them
#
# gremlins changes one operator at a time (< to <=, + to -, == to !=, ...),
# runs the tests against each such mutant and counts those the tests catch
# (killed) and those they miss (lived). The figures go to bench/mutation.md,
# between its markers; the account of every surviving mutant below them is
# kept by hand. Each package's result stays in build/mutate/, so a run of
# some packages rewrites the figures with the others' from their last run.
# Not part of `make test`: each mutant is a test run, so it takes
# minutes for the domain and the envelope and hours for the service and the
# API adapter, whose tests start DynamoDB Local and local-kms.

MUTATE_PKGS ?= $(mutate_all)
# A mutant's test run that takes this many times as long as the first,
# coverage-gathering run is stopped and counted as timed out (a mutant can
# turn a loop into an endless one). Unit-test runs are mostly compiling and
# linking, which a busy machine slows most: 3 (gremlins' default) timed out
# sound mutants of the domain here. The integration runs are mostly tests.
MUTATE_TIMEOUT_COEFFICIENT ?= 10
MUTATE_SERIAL_TIMEOUT_COEFFICIENT ?= 3
# Mutants tested at once, for packages with unit tests only.
MUTATE_WORKERS ?= 2

mutate_module := github.com/waymarkhq/waymark
# Packages whose tests start the local engines, so one mutant at a time.
mutate_serial := internal/service internal/apigw
# Packages with no tests of their own, and the tests that exercise them.
mutate_tests.internal/service := $(mutate_module)/internal/apigw

.PHONY: mutate

mutate_results := build/mutate
mutate_all      := internal/waymark internal/envelope internal/service internal/apigw
mutate_result    = $(mutate_results)/$(subst /,-,$(1)).json

# $(call mutate_package,PKG): one gremlins run over PKG, its results in
# $(mutate_results). make/mutate-go stands in for go on the PATH so that a
# package with no tests is tested by the packages named above.
define mutate_package
echo "== $(1)"; \
PATH="$$tmp/bin:$$PATH" MUTATE_REAL_GO="$$real_go" MUTATE_TESTS="$(mutate_tests.$(1))" \
	nice -n 19 "$$tmp/gremlins" unleash \
	--workers $(if $(filter $(1),$(mutate_serial)),1,$(MUTATE_WORKERS)) \
	--timeout-coefficient $(if $(filter $(1),$(mutate_serial)),$(MUTATE_SERIAL_TIMEOUT_COEFFICIENT),$(MUTATE_TIMEOUT_COEFFICIENT)) \
	$(if $(mutate_tests.$(1)),--coverpkg $(mutate_module)/$(1)) \
	--output "$(CURDIR)/$(call mutate_result,$(1))" ./$(1);
endef

## mutate: mutation testing of the domain, envelope, service and API adapter (bench/mutation.md)
mutate:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; start=$$(date +%s); \
	$(GO) build -o "$$tmp/gremlins" github.com/go-gremlins/gremlins/cmd/gremlins; \
	mkdir "$$tmp/bin"; ln -s "$(CURDIR)/make/mutate-go" "$$tmp/bin/go"; \
	real_go="$$($(GO) env GOROOT)/bin/go"; mkdir -p $(mutate_results); \
	$(foreach pkg,$(MUTATE_PKGS),$(call mutate_package,$(pkg))) \
	results=; for pkg in $(mutate_all); do \
		file=$(mutate_results)/$$(echo $$pkg | tr / -).json; \
		if [ -f "$$file" ]; then results="$$results $$pkg=$$file"; fi; \
	done; \
	$(GO) run ./bench/mutationreport -out bench/mutation.md -wall $$(( $$(date +%s) - start )) -ran "$(MUTATE_PKGS)" $$results
