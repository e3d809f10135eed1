# Fuzzing of the decoders a stranger can reach. Included by the top-level
# Makefile.
#
#   make fuzz-smoke   runs each fuzz target for FUZZTIME (10s) from its seed
#                     corpus (testdata/fuzz/<target>/ and the f.Add seeds);
#                     part of `make test`
#   make fuzz FUZZ=FuzzOpen PKG=./internal/envelope/ FUZZTIME=10m
#                     runs one target for longer
#
# A failing input is written to the package's testdata/fuzz/<target>/: commit
# it with the fix, so that every later `go test` replays it.

FUZZTIME ?= 10s
FUZZ_TARGETS := \
	./internal/apigw/:FuzzRequestBodies \
	./internal/waymark/:FuzzEventsBatch \
	./internal/envelope/:FuzzOpen

TEST_TARGETS += fuzz-smoke

.PHONY: fuzz-smoke fuzz

## fuzz-smoke: each fuzz target briefly (request bodies, events batch, sealed values)
fuzz-smoke:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; target=$${t##*:}; \
		echo "fuzz $$target ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## fuzz: one target for longer (FUZZ=name PKG=./internal/... FUZZTIME=duration)
fuzz:
	$(GO) test -run '^$$' -fuzz "^$(FUZZ)$$" -fuzztime $(FUZZTIME) $(PKG)
