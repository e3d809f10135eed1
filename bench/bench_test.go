package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The bench itself needs the local engines and minutes (`make bench`);
// these check, without engines, the parts its figures rest on.

func at(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }

func TestPhasesCountOverlappingCallsOnce(t *testing.T) {
	// identify's shape: two reads side by side, then a write, and a KMS
	// call between them that is not DynamoDB's.
	calls := []*call{
		{service: "dynamodb", op: "GetItem", start: at(0), end: at(3)},
		{service: "dynamodb", op: "Query", start: at(0), end: at(4)},
		{service: "kms", op: "Decrypt", start: at(3), end: at(4)},
		{service: "dynamodb", op: "PutItem", start: at(5), end: at(7)},
	}
	if got := phases(calls); got[0] != 0 || got[1] != 0 || got[3] != 2 {
		t.Fatalf("phases %v: the write follows the KMS call, which follows a read", got)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if p50, p99 := percentile(ds, 50), percentile(ds, 99); p50 != 50 || p99 != 99 {
		t.Fatalf("p50 %d, p99 %d", p50, p99)
	}
	if ds[0] != 100 {
		t.Fatal("percentile sorted its argument")
	}
}

func TestReplayAnswersEachTableAndDataKeyApart(t *testing.T) {
	tp := &tapes{byK: map[string]exchange{}}
	for _, x := range []struct{ target, body, answer string }{
		{"DynamoDB_20120810.GetItem", `{"TableName":"Users","Key":{}}`, `{"Item":{"user":{}}}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"Workspaces","Key":{}}`, `{"Item":{"ws":{}}}`},
		{"TrentService.Decrypt", `{"CiphertextBlob":"AQID"}`, `{"Plaintext":"a"}`},
		{"TrentService.Decrypt", `{"CiphertextBlob":"BAUG"}`, `{"Plaintext":"b"}`},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://engine/", nil)
		req.Header.Set("X-Amz-Target", x.target)
		tp.byK[exchangeKey(req, []byte(x.body))] = exchange{status: 200, header: http.Header{}, body: []byte(x.answer)}
	}
	rt := replayTransport{tp}
	ask := func(target, body string) string {
		req, _ := http.NewRequest(http.MethodPost, "http://engine/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := ask("DynamoDB_20120810.GetItem", `{"Key":{},"TableName":"Workspaces"}`); got != `{"Item":{"ws":{}}}` {
		t.Errorf("workspace read answered %s", got)
	}
	if got := ask("TrentService.Decrypt", `{"CiphertextBlob":"BAUG","KeyId":"k"}`); got != `{"Plaintext":"b"}` {
		t.Errorf("second data key answered %s", got)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://engine/", bytes.NewReader([]byte(`{"TableName":"Feedback"}`)))
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.PutItem")
	if _, err := rt.RoundTrip(req); err == nil {
		t.Error("a request never recorded was answered")
	}
}
