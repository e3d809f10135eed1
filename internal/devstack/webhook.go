package devstack

import (
	"context"
	"fmt"
	"io"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/webhook"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// startDeliverer runs the webhook deliverer over DynamoDB Local's stream of
// the Feedback table until Stop. It allows receivers on loopback (and plain
// http to them), so a receiver on this machine can be tried; each attempt
// is one line on the console, with ids, status and attempt only.
func (d *Dev) startDeliverer(cfg config.Config, store *dynamo.Store, console io.Writer) error {
	streams, err := cfg.StreamsClient(context.Background())
	if err != nil {
		return err
	}
	deliverer := webhook.NewDeliverer(store, webhook.Policy{AllowLoopback: true}, wiring.Logger(io.Discard, "error"))
	local := webhook.NewLocal(deliverer, streams, cfg.Tables[schema.FeedbackTable])
	s3Client, err := cfg.S3(context.Background())
	if err != nil {
		return err
	}
	if s3Client != nil {
		local.Objects = objects.New(s3Client, cfg.AttachmentsBucket)
	}
	local.OnOutcome = func(dl webhook.Delivery, attempt int, out webhook.Outcome) {
		line := fmt.Sprintf("webhook %s workspace=%s attempt=%d %s", dl.ID, dl.Workspace, attempt, out.Result)
		if out.Status != 0 {
			line += fmt.Sprintf(" status=%d", out.Status)
		}
		if out.Reason != "" {
			line += " (" + out.Reason + ")"
		}
		if out.Result == webhook.Retry {
			line += fmt.Sprintf(" next in %s", out.RetryAfter.Round(1e9))
		}
		fmt.Fprintln(console, line)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.stopDeliverer = cancel
	d.delivererDone = make(chan struct{})
	go func() {
		d.delivererErr = local.Run(ctx)
		close(d.delivererDone)
	}()
	return nil
}
