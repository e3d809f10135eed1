package config

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
)

// clearAWSEnv unsets the variables Lambda sets, for the length of a test.
func clearAWSEnv(t *testing.T) {
	for _, v := range []string{envRegion, envDefaultRegion, envAccessKeyID, envSecretAccessKey, envSessionToken} {
		t.Setenv(v, "")
	}
}

func TestAWSConfigFromLambdaEnvironment(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv(envRegion, "eu-central-1")
	t.Setenv(envAccessKeyID, "AKIDEXAMPLE")
	t.Setenv(envSecretAccessKey, "secret")
	t.Setenv(envSessionToken, "token")
	cfg, err := Config{}.awsConfig()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-central-1" || creds.AccessKeyID != "AKIDEXAMPLE" || creds.SecretAccessKey != "secret" || creds.SessionToken != "token" {
		t.Fatalf("region %q, credentials %+v", cfg.Region, creds)
	}
}

func TestAWSConfigForLocalEngines(t *testing.T) {
	clearAWSEnv(t)
	cfg, err := Config{DynamoDBEndpoint: "http://127.0.0.1:1"}.awsConfig()
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := cfg.Credentials.Retrieve(context.Background())
	if cfg.Region != LocalRegion || creds.AccessKeyID != "local" {
		t.Fatalf("region %q, key %q", cfg.Region, creds.AccessKeyID)
	}
}

func TestAWSConfigMissingFromEnvironment(t *testing.T) {
	clearAWSEnv(t)
	t.Setenv(envRegion, "eu-central-1")
	if _, err := (Config{}).awsConfig(); err == nil || !strings.Contains(err.Error(), envAccessKeyID) {
		t.Fatalf("no credentials: %v", err)
	}
	clearAWSEnv(t)
	t.Setenv(envAccessKeyID, "AKIDEXAMPLE")
	t.Setenv(envSecretAccessKey, "secret")
	if _, err := (Config{}).awsConfig(); err == nil || !strings.Contains(err.Error(), envRegion) {
		t.Fatalf("no region: %v", err)
	}
}

// The CLI's loaded configuration (profiles, SSO) is used as it is.
func TestAWSConfigGivenIsUsed(t *testing.T) {
	clearAWSEnv(t)
	given := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("profile", "s", "")}
	cfg, err := Config{AWS: &given}.awsConfig()
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := cfg.Credentials.Retrieve(context.Background())
	if cfg.Region != "us-east-1" || creds.AccessKeyID != "profile" {
		t.Fatalf("region %q, key %q", cfg.Region, creds.AccessKeyID)
	}
}

// Both clients retry without the SDK's client-side retry quota: a long run
// of failed attempts (a burst of faults) never makes the retryer refuse the
// next retry. The SDK's default bucket refuses after 35 retries.
func TestClientsRetryWithoutQuota(t *testing.T) {
	clearAWSEnv(t)
	db, k, err := Config{DynamoDBEndpoint: "http://127.0.0.1:1", KMSEndpoint: "http://127.0.0.1:1"}.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Not a throttling error: a retry after it costs the most tokens.
	transient := &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected"}
	for name, r := range map[string]aws.Retryer{"dynamodb": db.Options().Retryer, "kms": k.Options().Retryer} {
		if r.MaxAttempts() != retry.DefaultMaxAttempts {
			t.Errorf("%s: %d attempts, want the SDK's %d", name, r.MaxAttempts(), retry.DefaultMaxAttempts)
		}
		for i := range 1000 {
			if _, err := r.GetRetryToken(context.Background(), transient); err != nil {
				t.Fatalf("%s: retry %d refused: %v", name, i+1, err)
			}
		}
	}
}
