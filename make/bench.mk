# What each request costs, against the bare DynamoDB calls it makes. Included
# by the top-level Makefile.
#
#   make bench    starts its own DynamoDB Local and local-kms, measures (a few
#                 minutes), prints one table and writes it to bench/results.md
#
# Not part of `make test`: it measures, it does not check. Its code is vetted
# and compiled with every `make test` (PKGS), and its smoke test runs there.

PKGS += ./bench/...

.PHONY: bench

## bench: handler latency over its DynamoDB floor, capacity units, KMS calls, cold start, throughput (bench/results.md)
bench:
	$(GO) run ./bench -out bench/results.md
