package stack

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/deployed"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Function settings. 128 MB is Lambda's smallest size: the handlers do a few
// DynamoDB and (rarely, thanks to the data-key cache) KMS calls per request
// and are I/O bound. Their timeout is config.FunctionTimeout, the one value
// the handlers answer within and the local gateway and emulator enforce.
const (
	functionMemoryMB = 128
	functionLogLevel = "info"
	// logRetention applies to the functions' logs and the access logs: long
	// enough to investigate an incident, short enough to keep no operational
	// data longer than needed.
	logRetention = awslogs.RetentionDays_ONE_MONTH
)

// waymarkStack holds what the parts of one stack refer to while it is built.
type waymarkStack struct {
	stack  awscdk.Stack
	region Region
	opts   options
	key    awskms.Key
	// tables and functions are keyed by logical table name and function name.
	tables    map[string]awsdynamodb.Table
	functions map[string]awslambda.Function
	bucket    awss3.Bucket
	api       awsapigatewayv2.HttpApi
	stage     awsapigatewayv2.HttpStage
	// The webhook deliverer and its dead-letter queue (webhook.go).
	webhookFunction awslambda.Function
	webhookDLQ      awssqs.Queue
	// The analytics aggregator and its failure queue (analytics.go).
	analyticsFunction awslambda.Function
	analyticsFailures awssqs.Queue
}

func newWaymarkStack(scope constructs.Construct, r Region, opts options) (awscdk.Stack, error) {
	env := &awscdk.Environment{Region: jsii.String(r.Name)}
	if opts.Account != "" {
		env.Account = jsii.String(opts.Account)
	}
	s := &waymarkStack{
		stack: awscdk.NewStack(scope, jsii.String(StackName(r)), &awscdk.StackProps{
			Env:         env,
			Description: jsii.String(fmt.Sprintf("Waymark in %s: HTTP API, Lambda functions, DynamoDB tables and their KMS key; shares nothing with other regions", r.Name)),
		}),
		region:    r,
		opts:      opts,
		tables:    map[string]awsdynamodb.Table{},
		functions: map[string]awslambda.Function{},
	}
	awscdk.Tags_Of(s.stack).Add(jsii.String("application"), jsii.String("waymark"), nil)

	s.addKey()
	s.addTables()
	s.addBucket()
	if err := s.addFunctions(); err != nil {
		return nil, err
	}
	if err := s.addAPI(); err != nil {
		return nil, err
	}
	s.addWebhook()
	if err := s.addAnalytics(); err != nil {
		return nil, err
	}
	s.addDomain()
	s.addMonitoring()
	s.addOperatorPolicy()
	s.addOutputs()
	s.suppressNagFindings()
	return s.stack, nil
}

// addKey creates the customer-managed key that encrypts the tables (SSE) and
// wraps the data keys of field encryption.
func (s *waymarkStack) addKey() {
	s.key = awskms.NewKey(s.stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Waymark " + s.region.Name + ": DynamoDB encryption at rest and field data keys"),
		Alias:             jsii.String("alias/waymark"),
		EnableKeyRotation: jsii.Bool(true),
		Policy:            keyPolicy(s.region),
		// The retained tables and their backups stay readable only as long as
		// the key exists, so the key outlives the stack like they do.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		PendingWindow: awscdk.Duration_Days(jsii.Number(30)),
	})
}

// addTables creates one table per shared schema.
func (s *waymarkStack) addTables() {
	for _, t := range schema.All() {
		props := &awsdynamodb.TableProps{
			PartitionKey:        attribute(t.PartitionKey),
			BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
			Encryption:          awsdynamodb.TableEncryption_CUSTOMER_MANAGED,
			EncryptionKey:       s.key,
			DeletionProtection:  jsii.Bool(true),
			RemovalPolicy:       awscdk.RemovalPolicy_RETAIN,
			TimeToLiveAttribute: jsii.String(t.TTLAttribute),
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: jsii.Bool(true),
			},
		}
		if t.SortKey != nil {
			props.SortKey = attribute(*t.SortKey)
		}
		if t.Stream {
			// The content analytics read the ContentState table's transitions;
			// the webhook deliverer (and retention's file deletion) the Feedback table's.
			props.Stream = awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES
		}
		table := awsdynamodb.NewTable(s.stack, jsii.String(t.Name), props)
		for _, idx := range t.GlobalIndexes {
			gsi := &awsdynamodb.GlobalSecondaryIndexProps{
				IndexName:      jsii.String(idx.Name),
				PartitionKey:   attribute(idx.PartitionKey),
				ProjectionType: awsdynamodb.ProjectionType_ALL,
			}
			if idx.SortKey != nil {
				gsi.SortKey = attribute(*idx.SortKey)
			}
			table.AddGlobalSecondaryIndex(gsi)
		}
		// A retained table is found again by its logical id: pin it, so that a
		// refactoring of construct ids never orphans data.
		table.Node().DefaultChild().(awsdynamodb.CfnTable).OverrideLogicalId(jsii.String(tableLogicalID(t)))
		s.tables[t.Name] = table
	}
}

func tableLogicalID(t schema.Table) string { return t.Name + "Table" }

func attribute(k schema.KeyAttribute) *awsdynamodb.Attribute {
	types := map[schema.AttributeType]awsdynamodb.AttributeType{
		schema.String: awsdynamodb.AttributeType_STRING,
		schema.Number: awsdynamodb.AttributeType_NUMBER,
		schema.Binary: awsdynamodb.AttributeType_BINARY,
	}
	return &awsdynamodb.Attribute{Name: jsii.String(k.Name), Type: types[k.Type]}
}

// addFunctions creates one function per entry of the shared function list,
// each with its own role, log group and least-privilege policy.
func (s *waymarkStack) addFunctions() error {
	physical := map[string]string{}
	for name, t := range s.tables {
		physical[name] = *t.TableName()
	}
	env := config.Config{Tables: physical, KMSKeyID: *s.key.KeyArn(), LogLevel: functionLogLevel}.Env()
	// `sam local invoke --env-vars` only sets variables the template
	// declares: the local-endpoint ones are declared empty, which
	// config.FromEnv reads as unset, so on AWS the SDK's endpoints apply.
	env[config.EnvDynamoDBEndpoint], env[config.EnvKMSEndpoint] = "", ""
	commits := functionCommits(s.opts.AssetRoot)
	for _, f := range routes.Functions() {
		// Each function says which commit its binary was built from (also in
		// its first log line), so that what runs can be checked after a deploy.
		fnEnv := map[string]string{buildinfo.EnvVar: commits[f.Name]}
		for k, v := range env {
			fnEnv[k] = v
		}
		logs := awslogs.NewLogGroup(s.stack, jsii.String(f.LogicalID+"Logs"), &awslogs.LogGroupProps{
			Retention:     logRetention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		role := awsiam.NewRole(s.stack, jsii.String(f.LogicalID+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
			Description: jsii.String("Waymark " + f.Name + " function"),
		})
		// Instead of the managed AWSLambdaBasicExecutionRole (any log group of
		// the account), the role may only write to the function's own group.
		logs.GrantWrite(role)
		if err := s.grant(f, role); err != nil {
			return err
		}
		if f.Bucket != 0 {
			s.grantBucket(f, role)
			fnEnv[config.EnvAttachmentsBucket] = *s.bucket.BucketName()
			// Declared empty for `sam local invoke --env-vars`, as above.
			fnEnv[config.EnvS3Endpoint] = ""
		}
		fn := awslambda.NewFunction(s.stack, jsii.String(f.LogicalID), &awslambda.FunctionProps{
			Description:  jsii.String("Waymark " + f.Name),
			Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
			Architecture: awslambda.Architecture_ARM_64(),
			Handler:      jsii.String("bootstrap"),
			Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.opts.AssetRoot, f.Name)), nil),
			MemorySize:   jsii.Number(functionMemoryMB),
			Timeout:      awscdk.Duration_Seconds(jsii.Number(config.FunctionTimeout.Seconds())),
			Tracing:      awslambda.Tracing_ACTIVE,
			Environment:  jsiiStrings(fnEnv),
			LogGroup:     logs,
			Role:         role,
		})
		// `sam local invoke IdentifyFunction` and the README name functions by
		// these ids.
		fn.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(f.LogicalID))
		s.functions[f.Name] = fn
	}
	return nil
}

// addAPI creates the HTTP API with one route per entry of the route table.
func (s *waymarkStack) addAPI() error {
	cors := routes.CORS
	methods := make([]awsapigatewayv2.CorsHttpMethod, len(cors.AllowMethods))
	for i, m := range cors.AllowMethods {
		methods[i] = awsapigatewayv2.CorsHttpMethod(m)
	}
	s.api = awsapigatewayv2.NewHttpApi(s.stack, jsii.String("Api"), &awsapigatewayv2.HttpApiProps{
		ApiName:     jsii.String(StackName(s.region)),
		Description: jsii.String("Waymark public and server API"),
		CorsPreflight: &awsapigatewayv2.CorsPreflightOptions{
			AllowOrigins:  jsii.Strings(cors.AllowOrigins...),
			AllowMethods:  &methods,
			AllowHeaders:  jsii.Strings(cors.AllowHeaders...),
			ExposeHeaders: jsii.Strings(cors.ExposeHeaders...),
			MaxAge:        awscdk.Duration_Seconds(jsii.Number(float64(cors.MaxAgeSeconds))),
		},
		// The default stage is created below, with throttling and access logs.
		CreateDefaultStage: jsii.Bool(false),
	})
	s.stage = awsapigatewayv2.NewHttpStage(s.stack, jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    s.api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			BurstLimit: jsii.Number(s.opts.ThrottleBurst),
			RateLimit:  jsii.Number(s.opts.ThrottleRate),
		},
	})
	accessLogs := awslogs.NewLogGroup(s.stack, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	s.stage.Node().DefaultChild().(awsapigatewayv2.CfnStage).SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: accessLogs.LogGroupArn(),
		Format:         jsii.String(accessLogFormat()),
	})

	integrations := map[string]awsapigatewayv2integrations.HttpLambdaIntegration{}
	for _, f := range routes.Functions() {
		integrations[f.Name] = awsapigatewayv2integrations.NewHttpLambdaIntegration(
			jsii.String(f.LogicalID+"Integration"), s.functions[f.Name], nil)
	}
	for _, r := range routes.Table() {
		integration, ok := integrations[r.Function]
		if !ok {
			return fmt.Errorf("infra: route %s names function %q, which routes.Functions() does not list", r.RouteKey(), r.Function)
		}
		s.api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(r.Path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod(strings.ToUpper(r.Method))},
			Integration: integration,
		})
	}
	return nil
}

// accessLogFields are the access-log fields, in order. They identify the
// request and its outcome but hold nothing about the caller: no source IP,
// no user agent, no path (only the matched route key) and no body, so the
// access logs carry no personal data. messageString is already a quoted JSON
// string; the others are quoted here because API Gateway writes "-" for a
// missing value.
var accessLogFields = []struct{ name, variable string }{
	{"requestId", `"$context.requestId"`},
	{"requestTime", `"$context.requestTime"`},
	{"httpMethod", `"$context.httpMethod"`},
	{"routeKey", `"$context.routeKey"`},
	{"status", `"$context.status"`},
	{"protocol", `"$context.protocol"`},
	{"responseLength", `"$context.responseLength"`},
	{"responseLatency", `"$context.responseLatency"`},
	{"integrationLatency", `"$context.integration.latency"`},
	{"integrationStatus", `"$context.integration.status"`},
	{"integrationError", `"$context.integration.error"`},
	{"errorResponseType", `"$context.error.responseType"`},
	{"errorMessage", `$context.error.messageString`},
}

// accessLogFormat is the JSON line API Gateway writes per request.
func accessLogFormat() string {
	parts := make([]string, len(accessLogFields))
	for i, f := range accessLogFields {
		parts[i] = fmt.Sprintf("%q:%s", f.name, f.variable)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// addDomain maps the optional custom domain to the default stage. The
// execute-api endpoint is HTTPS-only already; the custom domain refuses
// anything older than TLS 1.2.
func (s *waymarkStack) addDomain() {
	d, ok := s.opts.Domains[s.region.Code]
	if !ok {
		return
	}
	dn := awsapigatewayv2.NewDomainName(s.stack, jsii.String("Domain"), &awsapigatewayv2.DomainNameProps{
		DomainName:     jsii.String(d.Name),
		Certificate:    awscertificatemanager.Certificate_FromCertificateArn(s.stack, jsii.String("Certificate"), jsii.String(d.CertificateArn)),
		SecurityPolicy: awsapigatewayv2.SecurityPolicy_TLS_1_2,
		EndpointType:   awsapigatewayv2.EndpointType_REGIONAL,
	})
	awsapigatewayv2.NewApiMapping(s.stack, jsii.String("DomainMapping"), &awsapigatewayv2.ApiMappingProps{
		Api:        s.api,
		DomainName: dn,
		Stage:      s.stage,
	})
	awscdk.NewCfnOutput(s.stack, jsii.String("DomainTarget"), &awscdk.CfnOutputProps{
		Description: jsii.String("Point a CNAME (or alias) record for " + d.Name + " here"),
		Value:       dn.RegionalDomainName(),
	})
}

// addOutputs publishes what the operator CLI and the README need; they are
// not exported, so that no other stack can come to depend on this one.
func (s *waymarkStack) addOutputs() {
	awscdk.NewCfnOutput(s.stack, jsii.String(deployed.OutputAPIURL), &awscdk.CfnOutputProps{
		Description: jsii.String("Base URL of the API for the snippet and servers"),
		Value:       s.stage.Url(),
	})
	awscdk.NewCfnOutput(s.stack, jsii.String(deployed.OutputKMSKeyARN), &awscdk.CfnOutputProps{
		Description: jsii.String("Customer-managed key of the tables and the field data keys"),
		Value:       s.key.KeyArn(),
	})
	awscdk.NewCfnOutput(s.stack, jsii.String(deployed.OutputAttachmentsBucket), &awscdk.CfnOutputProps{
		Description: jsii.String("Physical name of the feedback attachments bucket (" + config.EnvAttachmentsBucket + ")"),
		Value:       s.bucket.BucketName(),
	})
	for _, t := range schema.All() {
		awscdk.NewCfnOutput(s.stack, jsii.String(deployed.TableOutput(t.Name)), &awscdk.CfnOutputProps{
			Description: jsii.String("Physical name of the " + t.Name + " table (" + t.EnvVar + ")"),
			Value:       s.tables[t.Name].TableName(),
		})
	}
}

func jsiiStrings(m map[string]string) *map[string]*string {
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = jsii.String(v)
	}
	return &out
}
