// Package config reads a function's configuration from its environment and
// builds the AWS clients it needs. The CDK stack sets the same variables that
// `waymark dev`, `make invoke` and the tests set for the local engines.
package config

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/waymarkhq/waymark/internal/schema"
)

// Environment variables read by every function besides the table names of
// schema.Table.EnvVar.
const (
	// EnvKMSKeyID is the id, ARN or alias of the customer-managed key that
	// wraps the data keys.
	EnvKMSKeyID = "KMS_KEY_ID"
	// EnvDynamoDBEndpoint and EnvKMSEndpoint point the SDK at local engines;
	// they are unset in AWS.
	EnvDynamoDBEndpoint = "WAYMARK_DYNAMODB_ENDPOINT"
	EnvKMSEndpoint      = "WAYMARK_KMS_ENDPOINT"
	// EnvLogLevel is debug, info (default), warn or error.
	EnvLogLevel = "LOG_LEVEL"
)

// FunctionTimeout is how long a function may run for one request: the
// deployed functions' timeout, the deadline of the local gateway's handler
// contexts and the emulator's timeout under `make invoke`. It leaves room
// for the SDK's retries of a throttled call but ends a stuck invocation long
// before API Gateway's own 30-second limit.
const FunctionTimeout = 10 * time.Second

// Config is what a function needs to build its store.
type Config struct {
	// Tables maps a logical table name to its physical name.
	Tables           map[string]string
	KMSKeyID         string
	DynamoDBEndpoint string
	KMSEndpoint      string
	LogLevel         string
	// AWS, when set, is the AWS configuration to build the clients from:
	// the CLI loads it with the SDK's default chain (profiles, SSO) for a
	// deployed stack. Functions leave it nil and take region and
	// credentials from the environment Lambda gives them (Clients).
	AWS *aws.Config
}

// FromEnv reads the configuration; a missing table name or key id is an error,
// so a misconfigured function fails at start rather than on a request.
func FromEnv() (Config, error) {
	cfg := Config{
		Tables:           map[string]string{},
		KMSKeyID:         os.Getenv(EnvKMSKeyID),
		DynamoDBEndpoint: os.Getenv(EnvDynamoDBEndpoint),
		KMSEndpoint:      os.Getenv(EnvKMSEndpoint),
		LogLevel:         os.Getenv(EnvLogLevel),
	}
	for _, t := range schema.All() {
		name := os.Getenv(t.EnvVar)
		if name == "" {
			return Config{}, fmt.Errorf("config: %s is not set", t.EnvVar)
		}
		cfg.Tables[t.Name] = name
	}
	if cfg.KMSKeyID == "" {
		return Config{}, fmt.Errorf("config: %s is not set", EnvKMSKeyID)
	}
	return cfg, nil
}

// Env is the inverse of FromEnv: the variables that configure a function.
func (c Config) Env() map[string]string {
	env := map[string]string{EnvKMSKeyID: c.KMSKeyID}
	for _, t := range schema.All() {
		env[t.EnvVar] = c.Tables[t.Name]
	}
	if c.DynamoDBEndpoint != "" {
		env[EnvDynamoDBEndpoint] = c.DynamoDBEndpoint
	}
	if c.KMSEndpoint != "" {
		env[EnvKMSEndpoint] = c.KMSEndpoint
	}
	if c.LogLevel != "" {
		env[EnvLogLevel] = c.LogLevel
	}
	return env
}

// LocalTables names the tables of a local stack: the logical name after a prefix.
func LocalTables(prefix string) map[string]string {
	tables := map[string]string{}
	for _, t := range schema.All() {
		tables[t.Name] = prefix + t.Name
	}
	return tables
}

// Clients builds the DynamoDB and KMS clients. Without an AWS configuration
// they take the region and credentials from the environment, as Lambda (and
// `sam local invoke`) sets them; with local endpoints they use fixed dummy
// credentials, because the local engines check none.
//
// The functions do not use the SDK's config package (LoadDefaultConfig):
// in Lambda it finds nothing beyond these variables, and its SSO, STS and
// sign-in credential providers cost every cold start ~1 ms of package
// initialisation and 0.8 MB of binary (GODEBUG=inittrace=1, measured).
func (c Config) Clients(ctx context.Context) (*dynamodb.Client, *kms.Client, error) {
	awsCfg, err := c.awsConfig()
	if err != nil {
		return nil, nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		o.Retryer = Retryer()
		if c.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
			// DynamoDB Local's error answers carry no CRC32 header the SDK
			// accepts; validating it only logs a warning per error.
			o.DisableValidateResponseChecksum = true
		}
	})
	k := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		o.Retryer = Retryer()
		if c.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.KMSEndpoint)
		}
	})
	return db, k, nil
}

// StreamsClient is a DynamoDB Streams client on the same endpoint as the
// DynamoDB client (DynamoDB Local serves both APIs).
func (c Config) StreamsClient() (*dynamodbstreams.Client, error) {
	awsCfg, err := c.awsConfig()
	if err != nil {
		return nil, err
	}
	return dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		o.Retryer = Retryer()
		if c.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
		}
	}), nil
}

// Retryer is the retry policy of every client (Clients; the tests and the
// benchmarks build theirs through Clients too): the SDK's standard retryer
// (3 attempts, jittered exponential backoff, throttling backing off longer)
// without its client-side retry quota.
//
// That quota is a token bucket per client, drained by every retry and
// refilled by successes; once empty, every call that fails once fails at
// once with "retry quota exceeded", retries or not, until enough calls
// succeed. In a Lambda instance it only turns a burst of transient faults
// (measured: 30 % of calls failing) into a run of failed requests: the
// bucket is per instance, while what bounds retries against the service is
// the attempts per call, the backoff, the function's concurrency and the
// request's deadline. AWS's guide to the SDK's retries documents turning
// the rate limiter off (ratelimit.None) for such workloads. A new retryer
// for each client, as that guide asks of shared retryers.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.RateLimiter = ratelimit.None
	})
}

// Lambda's variables for the function's region and its role's credentials.
const (
	envRegion          = "AWS_REGION"
	envDefaultRegion   = "AWS_DEFAULT_REGION"
	envAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	envSessionToken    = "AWS_SESSION_TOKEN"
)

func (c Config) awsConfig() (aws.Config, error) {
	if c.AWS != nil {
		return c.AWS.Copy(), nil
	}
	cfg := aws.Config{Region: os.Getenv(envRegion)}
	if cfg.Region == "" {
		cfg.Region = os.Getenv(envDefaultRegion)
	}
	local := c.DynamoDBEndpoint != "" || c.KMSEndpoint != ""
	switch {
	case local:
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
		if cfg.Region == "" {
			cfg.Region = LocalRegion
		}
	case os.Getenv(envAccessKeyID) != "" && os.Getenv(envSecretAccessKey) != "":
		// Lambda's credentials last as long as the execution environment,
		// as the SDK's own environment provider assumes too.
		cfg.Credentials = credentials.NewStaticCredentialsProvider(os.Getenv(envAccessKeyID), os.Getenv(envSecretAccessKey), os.Getenv(envSessionToken))
	default:
		return aws.Config{}, fmt.Errorf("config: no AWS credentials: %s and %s are not set (Lambda sets them)", envAccessKeyID, envSecretAccessKey)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("config: no AWS region: %s is not set (Lambda sets it)", envRegion)
	}
	return cfg, nil
}

// LocalRegion is the region the local engines pretend to be in.
const LocalRegion = "eu-central-1"
