package stack

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Alarm thresholds. Every alarm looks at 5-minute windows and treats missing
// data as fine, because most of these metrics are only published when
// something happens.
const (
	alarmPeriodMinutes = 5
	// api5xxPercent is the share of server errors that pages, once at least
	// api5xxMinRequests requests came in (a single failure among three
	// requests is left to the Lambda error alarm).
	api5xxPercent     = 5
	api5xxMinRequests = 20
	// kmsQuotaPercent of the account's shared KMS request quota is where
	// throttling is near: the operator has time to ask for more.
	kmsQuotaPercent = 80
)

// dynamoDBOperations maps an access level to the DynamoDB operations (the
// Operation dimension of SystemErrors and ThrottledRequests) a function with
// it calls, so the alarms watch exactly what the functions use.
var dynamoDBOperations = map[routes.Access][]string{
	routes.Read:              {"GetItem", "Query", "BatchGetItem"},
	routes.ReadPublishKey:    {"GetItem", "Query", "BatchGetItem", "UpdateItem"},
	routes.ReadRefreshExpiry: {"GetItem", "Query", "BatchGetItem", "UpdateItem"},
	routes.ReadWrite:         {"GetItem", "Query", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"},
}

// addMonitoring adds the alarm topic, the alarms and the dashboard.
func (s *waymarkStack) addMonitoring() {
	// The topic carries alarm state changes only (metric names and numbers,
	// no customer data), so it uses SNS's default encryption rather than the
	// table key, which CloudWatch would then need to be allowed to use.
	topic := awssns.NewTopic(s.stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Waymark alarms (" + s.region.Name + ")"),
		EnforceSSL:  jsii.Bool(true),
	})
	// EnforceSSL writes a topic policy, and a topic policy replaces SNS's
	// default one: without this statement CloudWatch may not publish, and no
	// alarm would ever reach anyone. It allows the CloudWatch alarms of this
	// account and region only (the confused-deputy conditions).
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{topic.TopicArn()},
		Conditions: toPtr(alarmSourceCondition()),
	}))
	if s.opts.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(s.opts.AlarmEmail), nil))
	}
	awscdk.NewCfnOutput(s.stack, jsii.String("AlarmTopicArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("Subscribe to this topic to receive the alarms"),
		Value:       topic.TopicArn(),
	})

	period := awscdk.Duration_Minutes(jsii.Number(alarmPeriodMinutes))
	var alarms []interfacesawscloudwatch.IAlarmRef
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) {
		a := awscloudwatch.NewAlarm(s.stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		action := awscloudwatchactions.NewSnsAction(topic)
		a.AddAlarmAction(action)
		// The all-clear is sent too, so that nobody has to look whether an
		// incident is over.
		a.AddOkAction(action)
		alarms = append(alarms, a)
	}

	apiRequests := sum(s.api.MetricCount(nil), "requests", period)
	api5xx := sum(s.api.MetricServerError(nil), "5xx", period)
	alarm("Api5xxRateAlarm",
		fmt.Sprintf("More than %d%% of API requests failed with a 5xx in %d minutes", api5xxPercent, alarmPeriodMinutes),
		awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String(fmt.Sprintf("IF(requests >= %d, 100 * FILL(errors, 0) / requests, 0)", api5xxMinRequests)),
			UsingMetrics: &map[string]awscloudwatch.IMetric{
				"requests": apiRequests,
				"errors":   api5xx,
			},
			Label:  jsii.String("5xx %"),
			Period: period,
		}), api5xxPercent)

	for _, f := range routes.Functions() {
		fn := s.functions[f.Name]
		alarm(f.LogicalID+"ErrorsAlarm", "The "+f.Name+" function failed (crash or timeout)", sum(fn.MetricErrors(nil), "errors", period), 1)
		alarm(f.LogicalID+"ThrottlesAlarm", "The "+f.Name+" function was throttled", sum(fn.MetricThrottles(nil), "throttles", period), 1)
	}

	for _, t := range schema.All() {
		ops := s.tableOperations(t.Name)
		if len(ops) == 0 {
			continue
		}
		table := s.tables[t.Name]
		alarm(t.Name+"SystemErrorsAlarm", "DynamoDB answered requests on the "+t.Name+" table with a 500",
			sumOverOperations(table, "SystemErrors", ops, period), 1)
		alarm(t.Name+"ThrottledRequestsAlarm", "DynamoDB throttled requests on the "+t.Name+" table",
			sumOverOperations(table, "ThrottledRequests", ops, period), 1)
	}

	s.addWebhookAlarms(alarm, period)
	s.addAnalyticsAlarms(alarm, period)

	alarm("KmsRequestRateAlarm",
		fmt.Sprintf("KMS cryptographic requests reached %d%% of the account's quota in %s; throttling is near", kmsQuotaPercent, s.region.Name),
		kmsQuotaUsage(), kmsQuotaPercent)

	s.addDashboard(alarms, apiRequests, api5xx)
}

// alarmSourceCondition confines a service's use of the alarm topic to the
// CloudWatch alarms of this stack's account and region.
func alarmSourceCondition() map[string]interface{} {
	return map[string]interface{}{
		"StringEquals": map[string]interface{}{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
		"ArnLike": map[string]interface{}{
			"aws:SourceArn": "arn:" + *awscdk.Aws_PARTITION() + ":cloudwatch:" + *awscdk.Aws_REGION() + ":" + *awscdk.Aws_ACCOUNT_ID() + ":alarm:*",
		},
	}
}

// tableOperations lists, in a stable order, the operations any function
// performs on a table (the analytics aggregator's writes included).
func (s *waymarkStack) tableOperations(table string) []string {
	level := routes.Access(0)
	for _, f := range append(routes.Functions(), routes.Analytics) {
		if a, ok := f.Tables[table]; ok && a > level {
			level = a
		}
	}
	return dynamoDBOperations[level]
}

// sumOverOperations adds up a per-operation DynamoDB metric. CDK's
// metricSystemErrorsForOperations adds the series without FILL, and these
// metrics are published only for operations that had an error, so a sum of
// the raw series would almost never have a value to alarm on.
func sumOverOperations(table awsdynamodb.Table, metricName string, ops []string, period awscdk.Duration) awscloudwatch.IMetric {
	using := map[string]awscloudwatch.IMetric{}
	terms := make([]string, len(ops))
	for i, op := range ops {
		id := strings.ToLower(op)
		using[id] = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String("AWS/DynamoDB"),
			MetricName:    jsii.String(metricName),
			DimensionsMap: &map[string]*string{"TableName": table.TableName(), "Operation": jsii.String(op)},
			Statistic:     jsii.String("Sum"),
			Period:        period,
		})
		terms[i] = "FILL(" + id + ", 0)"
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression:   jsii.String(strings.Join(terms, " + ")),
		UsingMetrics: &using,
		Label:        jsii.String(metricName),
		Period:       period,
	})
}

// kmsQuotaUsage is the account's symmetric cryptographic KMS request rate as
// a percentage of its quota. KMS publishes no throttling metric of its own:
// the usage metric (per-minute sums) against the per-second quota is how
// throttling is seen coming.
func kmsQuotaUsage() awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("100 * (usage / 60) / SERVICE_QUOTA(usage)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"usage": kmsUsage(),
		},
		Label:  jsii.String("KMS quota %"),
		Period: awscdk.Duration_Minutes(jsii.Number(1)),
	})
}

func kmsUsage() awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  jsii.String("AWS/Usage"),
		MetricName: jsii.String("CallCount"),
		DimensionsMap: &map[string]*string{
			"Service":  jsii.String("KMS"),
			"Type":     jsii.String("API"),
			"Resource": jsii.String("CryptographicOperationsSymmetric"),
			"Class":    jsii.String("None"),
		},
		Statistic: jsii.String("Sum"),
		Period:    awscdk.Duration_Minutes(jsii.Number(1)),
	})
}

// addDashboard shows the alarms and the traffic of every part of the stack.
func (s *waymarkStack) addDashboard(alarms []interfacesawscloudwatch.IAlarmRef, apiRequests, api5xx awscloudwatch.Metric) {
	period := awscdk.Duration_Minutes(jsii.Number(alarmPeriodMinutes))
	graph := func(title string, left []awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title),
			Left:  &left,
			Width: jsii.Number(12),
		})
	}
	var invocations, errors, duration []awscloudwatch.IMetric
	for _, f := range routes.Functions() {
		fn := s.functions[f.Name]
		label := &awscloudwatch.MetricOptions{Label: jsii.String(f.Name), Period: period}
		invocations = append(invocations, fn.MetricInvocations(label))
		errors = append(errors, fn.MetricErrors(label))
		duration = append(duration, fn.MetricDuration(&awscloudwatch.MetricOptions{Label: jsii.String(f.Name + " p99"), Statistic: jsii.String("p99"), Period: period}))
	}
	var capacity []awscloudwatch.IMetric
	for _, t := range schema.All() {
		table := s.tables[t.Name]
		capacity = append(capacity,
			table.MetricConsumedReadCapacityUnits(&awscloudwatch.MetricOptions{Label: jsii.String(t.Name + " read"), Period: period}),
			table.MetricConsumedWriteCapacityUnits(&awscloudwatch.MetricOptions{Label: jsii.String(t.Name + " write"), Period: period}))
	}
	dashboard := awscloudwatch.NewDashboard(s.stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		// Dashboard names are global to the account: the stack name keeps the
		// regions apart.
		DashboardName: jsii.String(StackName(s.region)),
	})
	dashboard.AddWidgets(awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title:  jsii.String("Alarms"),
		Alarms: &alarms,
		Width:  jsii.Number(24),
	}))
	dashboard.AddWidgets(
		graph("API requests and 5xx", []awscloudwatch.IMetric{
			apiRequests, api5xx, sum(s.api.MetricClientError(nil), "4xx", period),
		}),
		graph("API latency p99 (ms)", []awscloudwatch.IMetric{
			s.api.MetricLatency(&awscloudwatch.MetricOptions{Statistic: jsii.String("p99"), Label: jsii.String("total"), Period: period}),
			s.api.MetricIntegrationLatency(&awscloudwatch.MetricOptions{Statistic: jsii.String("p99"), Label: jsii.String("integration"), Period: period}),
		}),
	)
	dashboard.AddWidgets(graph("Lambda invocations", invocations), graph("Lambda errors", errors))
	dashboard.AddWidgets(graph("Lambda duration p99 (ms)", duration), graph("DynamoDB consumed capacity units", capacity))
	dashboard.AddWidgets(graph("KMS cryptographic requests (account, per minute)", []awscloudwatch.IMetric{kmsUsage()}))
}

// sum is a count metric summed over the period.
func sum(m awscloudwatch.Metric, label string, period awscdk.Duration) awscloudwatch.Metric {
	return m.With(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Label: jsii.String(label), Period: period})
}
