package stack

import (
	"sort"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// The aggregator reads the ContentState stream through a tumbling window
// (the handler needs the shard id only that event carries), bisects a
// failing batch, retries a bounded number of times and then sends the
// batch's description to an encrypted queue.
func TestAnalyticsStreamSource(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		fn := routes.Analytics.LogicalID
		tpl.resource(t, fn, "AWS::Lambda::Function")
		p := props(tpl.resource(t, analyticsStreamSourceID, "AWS::Lambda::EventSourceMapping"))
		if ref(p["FunctionName"]) != fn {
			t.Errorf("mapping targets %v, want %s", p["FunctionName"], fn)
		}
		if ref(p["EventSourceArn"]) != tableLogicalID(schemaTable(t, schema.ContentStateTable)) || !strings.Contains(toJSON(p["EventSourceArn"]), "StreamArn") {
			t.Errorf("mapping reads %v, want the ContentState table's stream", p["EventSourceArn"])
		}
		if p["TumblingWindowInSeconds"] != float64(analyticsTumblingSeconds) {
			t.Errorf("tumbling window %v", p["TumblingWindowInSeconds"])
		}
		if p["BisectBatchOnFunctionError"] != true {
			t.Errorf("bisect on error %v", p["BisectBatchOnFunctionError"])
		}
		if r, ok := p["MaximumRetryAttempts"].(float64); !ok || r < 0 || r > 100 {
			t.Errorf("retries %v, want bounded", p["MaximumRetryAttempts"])
		}
		if p["BatchSize"] != float64(analyticsBatchSize) || p["StartingPosition"] != "TRIM_HORIZON" {
			t.Errorf("batch size %v, starting position %v", p["BatchSize"], p["StartingPosition"])
		}
		dest := p["DestinationConfig"].(map[string]interface{})["OnFailure"].(map[string]interface{})["Destination"]
		if ref(dest) != analyticsFailureQueueID {
			t.Fatalf("on-failure destination %v, want the %s queue", dest, analyticsFailureQueueID)
		}
		q := props(tpl.resource(t, analyticsFailureQueueID, "AWS::SQS::Queue"))
		if ref(q["KmsMasterKeyId"]) != keyID(t, tpl) {
			t.Errorf("failure queue encrypted with %v, want the stack's key", q["KmsMasterKeyId"])
		}
	})
}

// The aggregator's role holds exactly: the ContentState stream, the
// Analytics table, the table key through DynamoDB, Decrypt of field data
// keys (never GenerateDataKey: it seals nothing) and sending to its failure
// queue.
func TestAnalyticsRole(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		var sids []string
		for _, st := range statements(t, tpl, routes.Analytics.LogicalID) {
			sid, _ := st["Sid"].(string)
			if sid == "" {
				// The log group's grant and X-Ray's, the same as every function's.
				if !strings.Contains(toJSON(st["Resource"]), routes.Analytics.LogicalID+"Logs") && !strings.HasPrefix(strs(st["Action"])[0], "xray:") {
					t.Errorf("statement without sid: %v on %v", st["Action"], st["Resource"])
				}
				continue
			}
			sids = append(sids, sid)
			actions, resource := strs(st["Action"]), toJSON(st["Resource"])
			switch sid {
			case "ReadContentStateStream":
				if !strings.Contains(resource, "StreamArn") || !strings.Contains(resource, tableLogicalID(schemaTable(t, schema.ContentStateTable))) {
					t.Errorf("%s on %s", sid, resource)
				}
			case "ReadWriteAnalytics":
				if !strings.Contains(resource, tableLogicalID(schemaTable(t, schema.AnalyticsTable))) || strings.Contains(resource, "*") {
					t.Errorf("%s on %s", sid, resource)
				}
			case "OpenFields":
				if !sameSet(actions, []string{"kms:Decrypt"}) || st["Condition"] == nil {
					t.Errorf("%s: %v %v", sid, actions, st["Condition"])
				}
			case "TableKeyThroughDynamoDB", "QueueKeyThroughSQS":
				if !strings.Contains(toJSON(st["Condition"]), "kms:ViaService") {
					t.Errorf("%s without kms:ViaService: %v", sid, st["Condition"])
				}
			case "SendFailures":
				if !sameSet(actions, []string{"sqs:SendMessage"}) || ref(st["Resource"]) != analyticsFailureQueueID {
					t.Errorf("%s: %v on %s", sid, actions, resource)
				}
			default:
				t.Errorf("unexpected statement %s: %v on %s", sid, actions, resource)
			}
			for _, a := range actions {
				if strings.Contains(a, "*") || a == "kms:GenerateDataKey" && sid != "QueueKeyThroughSQS" {
					t.Errorf("%s grants %s", sid, a)
				}
			}
		}
		sort.Strings(sids)
		want := []string{"OpenFields", "QueueKeyThroughSQS", "ReadContentStateStream", "ReadWriteAnalytics", "SendFailures", "TableKeyThroughDynamoDB"}
		if strings.Join(sids, " ") != strings.Join(want, " ") {
			t.Errorf("statements %v, want %v", sids, want)
		}
	})
}

func TestAnalyticsAlarms(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		fn := `{"Name":"FunctionName","Value":{"Ref":"` + routes.Analytics.LogicalID + `"}}`
		want := map[string][]string{
			"iterator age": {`"MetricName":"IteratorAge"`, fn, `"Maximum"`},
			"errors":       {`"MetricName":"Errors"`, fn},
			"failed batch": {`"MetricName":"ApproximateNumberOfMessagesVisible"`, analyticsFailureQueueID},
			// The table alarms watch the operations the aggregator makes too.
			"Analytics table's throttled writes": {`"MetricName":"ThrottledRequests"`, `{"Ref":"AnalyticsTable"}`, "FILL(updateitem, 0)"},
		}
		for what, parts := range want {
			found := false
			for _, a := range tpl.ofType("AWS::CloudWatch::Alarm") {
				d, all := toJSON(props(a)), true
				for _, p := range parts {
					all = all && strings.Contains(d, p)
				}
				found = found || all
			}
			if !found {
				t.Errorf("no alarm on the analytics aggregator's %s", what)
			}
		}
	})
}

func schemaTable(t *testing.T, name string) schema.Table {
	t.Helper()
	for _, st := range schema.All() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no table %s", name)
	return schema.Table{}
}
