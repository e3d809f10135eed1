// Package webhook delivers new feedback to a workspace's webhook: the signed
// body, the retry schedule, the parking of deliveries that fail for the
// whole retry window, and the HTTP client that refuses private addresses.
// The deployed function (over the Feedback table's stream and an SQS queue)
// and `waymark dev` (over DynamoDB Local's stream) run the same Deliverer.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	HeaderDelivery  = "waymark-delivery"
	HeaderSignature = "waymark-signature"
)

// Sign is the waymark-signature header of body sent at t:
// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrSignature is every verification failure, so a caller learns nothing
// about which part was wrong.
var ErrSignature = errors.New("webhook: signature does not verify")

// Verify checks a waymark-signature header against the raw body, as a
// receiver written in Go does (docs/webhooks.md). A signature older or newer
// than tolerance (of now) is refused, which bounds replays; several v1
// values (during a secret rotation) are accepted if any matches.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrSignature)
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignature
}
