# Lambda builds and the CDK app. Included by the top-level Makefile.
#
#   make build      build/<name>/bootstrap for every functions/<name>/ (linux/arm64)
#   make synth      both stacks into cdk.out/, offline, with the cdk-nag checks
#   make deploy     the EU stack (Waymark-eu, eu-central-1); needs AWS credentials
#   make deploy-us  the US stack (Waymark-us, us-east-1); needs AWS credentials
#   make cdk-deps   the pinned CDK CLI (node_modules/.bin/cdk, from package-lock.json)
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

LAMBDA_NAMES      := $(notdir $(patsubst %/,%,$(wildcard functions/*/)))
LAMBDA_BOOTSTRAPS := $(LAMBDA_NAMES:%=build/%/bootstrap)

.PHONY: build synth deploy deploy-us cdk-deps infra-always

build: $(LAMBDA_BOOTSTRAPS)

# go build knows what is stale (its cache), so make always asks it.
build/%/bootstrap: infra-always
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -trimpath -ldflags="-s -w" -o $@ ./functions/$*

infra-always:

cdk-deps: $(CDK)

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# cdk-nag errors fail the synth; the summary counts what its reports hold.
synth: build cdk-deps
	@rm -f cdk.out/AwsSolutions-*-NagReport.csv
	$(CDK) synth --quiet --no-notices -c regions=$(SYNTH_REGIONS) $(CDK_CONTEXT)
	@for r in cdk.out/AwsSolutions-*-NagReport.csv; do \
		echo "cdk-nag $$r: $$(grep -c '"Non-Compliant"' $$r) unsuppressed, $$(grep -c '"Suppressed"' $$r) suppressed with a reason"; \
	done

deploy: build cdk-deps
	$(CDK) deploy Waymark-eu --no-notices $(CDK_CONTEXT)

deploy-us: build cdk-deps
	$(CDK) deploy Waymark-us --no-notices -c regions=us $(CDK_CONTEXT)
