# Invoking one function's real bootstrap with a saved event, without SAM or
# Docker. Included by the top-level Makefile.
#
#   make invoke FN=identify                                  the function's happy-path event
#   make invoke FN=identify EVENT=events-samples/identify-oversized-prop.json
#   make invoke-bench                                        cold and warm invocations against a hello-world
#
# FN is a function name (identify, events, ...) or its logical id
# (IdentifyFunction, ...). The function runs under the AWS Lambda Runtime
# Interface Emulator against the DynamoDB Local and local-kms of the running
# `make dev`, or of a local stack started for the invocation.

FN    ?=
EVENT ?= events-samples/$(FN).json

.PHONY: invoke invoke-bench

## invoke: run FN under the Lambda Runtime Interface Emulator with the event in EVENT
invoke:
	@if [ -z "$(FN)" ]; then echo "usage: make invoke FN=<function> [EVENT=<event file>]  (see events-samples/)"; exit 2; fi
	$(GO) run ./cmd/waymark invoke $(FN) $(EVENT)

## invoke-bench: cold start and warm invocation of every function under the emulator, next to a hello-world
invoke-bench:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 10x ./internal/invoke
