# The browser snippet and its demo page. Included by the top-level Makefile.
#
#   make snippet-test        its size limits, node's tests of its logic and of
#                            the npm package (contents, types checked by tsc),
#                            then the end-to-end scenarios in headless Chromium
#                            against local stacks (part of `make test`)
#   make snippet-screenshot  the same scenarios, retaking docs/img/demo.png
#
# The browser is the system's Chromium (/usr/bin/chromium, or $CHROMIUM),
# driven by playwright-core; it, TypeScript, driver.js and shepherd.js are
# development dependencies pinned in snippet/package-lock.json.

TEST_TARGETS += snippet-test
# snippet/ is a Go package too: it embeds the files `waymark dev` serves.
PKGS += ./snippet

# The snippet ships as written, with no build step, so its limits are on the
# files: the core, and each adapter (loaded only by the pages that use it).
# 4.5 KiB since feedback attachments (presigned form uploads) joined the core.
SNIPPET_MAX_GZIP := 4608
ADAPTER_MAX_GZIP := 1024
SNIPPET_DEPS     := snippet/node_modules/.package-lock.json

.PHONY: snippet-test snippet-size snippet-unit snippet-e2e snippet-screenshot

snippet-test: snippet-size snippet-unit snippet-e2e

$(SNIPPET_DEPS): snippet/package.json snippet/package-lock.json
	cd snippet && npm ci --no-audit --no-fund
	@touch $@

snippet-size:
	@size=$$(gzip -9 -c snippet/waymark.js | wc -c); \
	echo "snippet/waymark.js: $$size bytes gzipped (limit $(SNIPPET_MAX_GZIP))"; \
	test $$size -le $(SNIPPET_MAX_GZIP)
	@for f in snippet/adapters/*.mjs; do \
		size=$$(gzip -9 -c $$f | wc -c); \
		echo "$$f: $$size bytes gzipped (limit $(ADAPTER_MAX_GZIP))"; \
		test $$size -le $(ADAPTER_MAX_GZIP) || exit 1; \
	done

snippet-unit: $(SNIPPET_DEPS)
	cd snippet && node --test test/unit/*.test.mjs

snippet-e2e: $(SNIPPET_DEPS)
	@start=$$(date +%s); \
	cd snippet && node --test --test-concurrency=1 test/e2e/*.test.mjs && \
	echo "browser end-to-end tests took $$(( $$(date +%s) - start )) s"

snippet-screenshot: $(SNIPPET_DEPS)
	cd snippet && WAYMARK_SCREENSHOT=$(CURDIR)/docs/img/demo.png node --test --test-concurrency=1 test/e2e/*.test.mjs
