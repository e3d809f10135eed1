# Lambda builds and the CDK app. Included by the top-level Makefile.
#
#   make build      build/<name>/bootstrap for every functions/<name>/ (linux/arm64)
#   make synth      both stacks into cdk.out/, offline, with the cdk-nag checks
#   make deploy     the EU stack (Waymark-eu, eu-central-1); needs AWS credentials
#   make deploy-us  the US stack (Waymark-us, us-east-1); needs AWS credentials
#   make cdk-deps   the pinned CDK CLI (node_modules/.bin/cdk, from package-lock.json)
#   make iam-check  (part of make test) every AWS call the integration suite
#                   made, evaluated against both stacks' synthesized policies
#
# Extra CDK context goes through CDK_CONTEXT, for example
#   make deploy CDK_CONTEXT='-c alarmEmail=ops@example.com'

CDK          := node_modules/.bin/cdk
CDK_CONTEXT  ?=
# Synth covers every region so that both templates are checked on every run.
SYNTH_REGIONS ?= eu,us

# The CLI would otherwise report usage to AWS, and jsii prints a banner on
# every run under Node 20; `go test ./infra/...` starts jsii too, hence export.
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

# The integration suite (internal/apigw) records every DynamoDB and KMS call
# it makes, by function, into AWS_CALLS; iam-check then evaluates them
# against the synthesized templates (infra/stack/calls_test.go). Two steps,
# because the packages of one `go test` run in parallel.
AWS_CALLS := $(CURDIR)/build/aws-calls.json
export WAYMARK_RECORD_AWS_CALLS := $(AWS_CALLS)
TEST_TARGETS += iam-check

LAMBDA_NAMES      := $(notdir $(patsubst %/,%,$(wildcard functions/*/)))
LAMBDA_BOOTSTRAPS := $(LAMBDA_NAMES:%=build/%/bootstrap)

.PHONY: build synth deploy deploy-us cdk-deps infra-always iam-check

build: $(LAMBDA_BOOTSTRAPS)

# go build knows what is stale (its cache), so make always asks it. It also
# embeds the commit (-buildvcs): a function logs it at start, and the CDK app
# (which runs this target itself before every synth and deploy) sets it as
# the function's WAYMARK_COMMIT.
build/%/bootstrap: infra-always
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -buildvcs=auto -tags lambda.norpc -trimpath -ldflags="-s -w" -o $@ ./functions/$*

infra-always:

cdk-deps: $(CDK)

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# cdk-nag errors fail the synth; the summary counts what its reports hold.
# The app runs `make build` itself before it synthesizes (infra/stack/build.go).
synth: cdk-deps
	@rm -f cdk.out/AwsSolutions-*-NagReport.csv
	$(CDK) synth --quiet --no-notices -c regions=$(SYNTH_REGIONS) $(CDK_CONTEXT)
	@for r in cdk.out/AwsSolutions-*-NagReport.csv; do \
		echo "cdk-nag $$r: $$(grep -c '"Non-Compliant"' $$r) unsuppressed, $$(grep -c '"Suppressed"' $$r) suppressed with a reason"; \
	done

deploy: cdk-deps
	$(CDK) deploy Waymark-eu --no-notices $(CDK_CONTEXT)

deploy-us: cdk-deps
	$(CDK) deploy Waymark-us --no-notices -c regions=us $(CDK_CONTEXT)

# After go-test, whose integration suite wrote $(AWS_CALLS).
iam-check: go-test
	@test -s $(AWS_CALLS) || { echo "iam-check: $(AWS_CALLS) is missing: the integration suite records it"; exit 1; }
	WAYMARK_CHECK_AWS_CALLS=$(AWS_CALLS) $(GO) test -count=1 -v -run '^TestRecordedCallsAreGranted$$' ./infra/stack
