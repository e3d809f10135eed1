# Known vulnerabilities in what the project's code calls. Included by the
# top-level Makefile.
#
#   make vuln   govulncheck over the project's packages against a local copy
#               of the Go vulnerability database (part of `make test`)
#
# govulncheck (pinned as a tool dependency in go.mod) reports the advisories
# of the Go vulnerability database whose vulnerable functions the project's
# code can reach, in its modules and in the standard library of the Go it is
# built with. It fails (exit 3) on any: a new advisory fails CI.
#
# The database is not fetched from its web service: it is indexed from the
# golang.org/x/vulndb module at VULNDB_VERSION (fetched by the go command like
# any module), so the scan needs only the module proxy and always reads the
# same advisories until VULNDB_VERSION is bumped. Bump it to a newer
# pseudo-version of golang.org/x/vulndb (the module has no tagged versions:
# `go list -m golang.org/x/vulndb@latest` prints the newest the proxy has);
# the index is built once per version and kept in the user cache directory.

TEST_TARGETS += vuln

VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/waymark/vulndb/$(VULNDB_VERSION)

.PHONY: vuln

## vuln: govulncheck over the project's packages (offline database, golang.org/x/vulndb at VULNDB_VERSION)
vuln: $(VULNDB_DIR)/index/db.json
	$(GO) tool govulncheck -db file://$(VULNDB_DIR) $(PKGS)

# The advisories are the module's data/osv/*.json; its cmd/indexdb writes them
# as the database layout govulncheck reads. Built beside its place and moved
# into it, so an interrupted run leaves no half database behind. Run outside the
# project's module: the tool builds with vulndb's own go.mod, and go.sum here
# stays as it is.
$(VULNDB_DIR)/index/db.json:
	@set -e; mkdir -p "$(dir $(VULNDB_DIR))"; \
	tmp=$$(mktemp -d "$(dir $(VULNDB_DIR)).indexing-XXXXXX"); trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp"; \
	src=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -d "$$src/data/osv" || { echo "no data/osv in golang.org/x/vulndb@$(VULNDB_VERSION)"; exit 1; }; \
	echo "indexing $$(ls "$$src/data/osv" | wc -l) advisories of golang.org/x/vulndb@$(VULNDB_VERSION)"; \
	$(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) -vulns "$$src/data/osv" -out "$$tmp/db"; \
	rm -rf "$(VULNDB_DIR)"; mv "$$tmp/db" "$(VULNDB_DIR)"
