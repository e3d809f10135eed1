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
# minutes for the domain and the envelope and about an hour for the service
# and the API adapter, whose tests start DynamoDB Local and local-kms (with
# the test map below, at a load average of 4-7 on 2 cores: 9 minutes for the
# map, 36 for the service's 266 mutants, 10 for the adapter's 54).
#
# The service and the API adapter: each mutant runs only the tests that
# reach its line. Before gremlins, make/mutate-testmap runs each test of
# internal/apigw alone with coverage of both packages and keeps, in
# $(mutate_results)/testmap, which tests reach which lines; make/mutate-go
# finds the line gremlins mutated (the file that differs from a copy of this
# tree taken at the start, so edits during a run do not confuse it) and
# runs those tests, the ones that took under a second first. Why this counts
# the same mutants as killed as the whole suite would:
# - a test that never executes the mutated line runs exactly as it does on
#   the original code, so it passes as it did when the map was made;
# - the tests in common: each test of the suite that could fail runs, in a
#   fresh process with its own engines (as the whole suite starts its own);
#   -failfast, which gremlins passes anyway, stops at the first failure.
# The one thing the whole suite has that a chosen set lacks is the state
# earlier tests leave in the shared stack: a mutant whose test passes but
# leaves bad data that a later test, which never runs the line, trips on,
# would be killed by the whole suite and lives here. So this can only
# under-count kills, and every survivor is examined by hand (bench/
# mutation.md). The end-of-suite plaintext scan runs after the chosen tests
# as after all. A line no test reaches in the map (gremlins and the map
# both take coverage, so only a test whose path varies from run to run can
# cause this) runs the whole suite, as before. The map is rebuilt on every
# `make mutate` of these packages, from the tree being mutated.

MUTATE_PKGS ?= $(mutate_all)
# A mutant's test run that takes this many times as long as the first,
# coverage-gathering run is stopped and counted as timed out (a mutant can
# turn a loop into an endless one). Unit-test runs are mostly compiling and
# linking, which a busy machine slows most: 3 (gremlins' default) timed out
# sound mutants of the domain here. The integration runs are mostly tests.
MUTATE_TIMEOUT_COEFFICIENT ?= 10
MUTATE_SERIAL_TIMEOUT_COEFFICIENT ?= 3
# Mutants tested at once. Each test process of the service and the API
# adapter starts engines of its own on free ports, so these can run side by
# side too; on 2 cores one compiles while the other waits on its engines.
MUTATE_WORKERS ?= 2
MUTATE_SERIAL_WORKERS ?= 2
# gremlins and the tests run at this niceness; 19 yields almost all of the
# CPU to anything else running (a make test next door, a build).
MUTATE_NICE ?= 19

mutate_module := github.com/waymarkhq/waymark
# Packages whose tests start the local engines (see the test map above).
mutate_serial := internal/service internal/apigw
# Packages with no tests of their own, and the tests that exercise them.
mutate_tests.internal/service := $(mutate_module)/internal/apigw

.PHONY: mutate

mutate_results := build/mutate
mutate_all      := internal/waymark internal/envelope internal/service internal/apigw
mutate_result    = $(mutate_results)/$(subst /,-,$(1)).json
mutate_testmap  := $(mutate_results)/testmap
mutate_coverpkgs := $(mutate_module)/internal/service,$(mutate_module)/internal/apigw

# $(call mutate_package,PKG): one gremlins run over PKG, its results in
# $(mutate_results). make/mutate-go stands in for go on the PATH so that a
# package with no tests is tested by the packages named above.
define mutate_package
echo "== $(1)"; \
PATH="$$tmp/bin:$$PATH" MUTATE_REAL_GO="$$real_go" MUTATE_TESTS="$(mutate_tests.$(1))" \
	MUTATE_MODULE=$(mutate_module) MUTATE_SRC="$$tmp/src" \
	$(if $(filter $(1),$(mutate_serial)),MUTATE_TESTMAP="$(CURDIR)/$(mutate_testmap)") \
	nice -n $(MUTATE_NICE) "$$tmp/gremlins" unleash \
	--workers $(if $(filter $(1),$(mutate_serial)),$(MUTATE_SERIAL_WORKERS),$(MUTATE_WORKERS)) \
	--timeout-coefficient $(if $(filter $(1),$(mutate_serial)),$(MUTATE_SERIAL_TIMEOUT_COEFFICIENT),$(MUTATE_TIMEOUT_COEFFICIENT)) \
	$(if $(mutate_tests.$(1)),--coverpkg $(mutate_module)/$(1)) \
	--output "$(CURDIR)/$(call mutate_result,$(1))" ./$(1);
endef

# The map of which tests reach which lines, remade when any Go source or
# the module changes (it takes a run of each test alone: 5–15 minutes).
$(mutate_testmap)/blocks: $(shell find internal -name '*.go') go.mod go.sum make/mutate-testmap
	MUTATE_REAL_GO="$$($(GO) env GOROOT)/bin/go" nice -n $(MUTATE_NICE) \
		make/mutate-testmap internal/apigw $(mutate_coverpkgs) $(mutate_testmap)

## mutate: mutation testing of the domain, envelope, service and API adapter (bench/mutation.md)
mutate: $(if $(filter $(mutate_serial),$(MUTATE_PKGS)),$(mutate_testmap)/blocks)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; start=$$(date +%s); \
	$(GO) build -o "$$tmp/gremlins" github.com/go-gremlins/gremlins/cmd/gremlins; \
	mkdir "$$tmp/bin"; ln -s "$(CURDIR)/make/mutate-go" "$$tmp/bin/go"; \
	real_go="$$($(GO) env GOROOT)/bin/go"; mkdir -p $(mutate_results); \
	rm -f $(mutate_testmap)/mutants; mkdir "$$tmp/src"; cp -R internal "$$tmp/src/"; \
	$(foreach pkg,$(MUTATE_PKGS),$(call mutate_package,$(pkg))) \
	results=; for pkg in $(mutate_all); do \
		file=$(mutate_results)/$$(echo $$pkg | tr / -).json; \
		if [ -f "$$file" ]; then results="$$results $$pkg=$$file"; fi; \
	done; \
	$(GO) run ./bench/mutationreport -out bench/mutation.md -wall $$(( $$(date +%s) - start )) -ran "$(MUTATE_PKGS)" $$results
