// Package config reads a function's configuration from its environment and
// builds the AWS clients it needs. The CDK stack sets the same variables that
// `waymark dev`, `make invoke` and the tests set for the local engines.
package config

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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

// Config is what a function needs to build its store.
type Config struct {
	// Tables maps a logical table name to its physical name.
	Tables           map[string]string
	KMSKeyID         string
	DynamoDBEndpoint string
	KMSEndpoint      string
	LogLevel         string
	// Region, when set, overrides the region of the AWS configuration (the
	// CLI names a stack's region; functions take theirs from Lambda).
	Region string
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

// Clients builds the DynamoDB and KMS clients. With local endpoints it uses
// fixed dummy credentials, because the local engines check none.
func (c Config) Clients(ctx context.Context) (*dynamodb.Client, *kms.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if c.DynamoDBEndpoint != "" || c.KMSEndpoint != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, awsconfig.WithRegion(LocalRegion))
		}
	}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("config: load AWS configuration: %w", err)
	}
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if c.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
			// DynamoDB Local's error answers carry no CRC32 header the SDK
			// accepts; validating it only logs a warning per error.
			o.DisableValidateResponseChecksum = true
		}
	})
	k := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		if c.KMSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.KMSEndpoint)
		}
	})
	return db, k, nil
}

// LocalRegion is the region the local engines pretend to be in.
const LocalRegion = "eu-central-1"
