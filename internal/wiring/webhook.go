package wiring

import (
	"context"
	"log/slog"
	"os"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/webhook"
)

// WebhookFromEnv wires the deployed webhook deliverer from its environment:
// public receivers over https only, the queue the stack made for it.
func WebhookFromEnv(ctx context.Context) *webhook.Function {
	cfg, err := config.FromEnv()
	log := Logger(os.Stdout, cfg.LogLevel)
	fail := func(step string, err error) {
		log.Error(step, slog.String("error", err.Error()))
		os.Exit(1)
	}
	if err != nil {
		fail("configuration", err)
	}
	queueURL := os.Getenv(config.EnvWebhookQueueURL)
	if queueURL == "" {
		fail("configuration", errMissing(config.EnvWebhookQueueURL))
	}
	db, kmsClient, err := cfg.Clients(ctx)
	if err != nil {
		fail("start", err)
	}
	queue, err := cfg.SQSClient(ctx)
	if err != nil {
		fail("start", err)
	}
	// The stack gives the deliverer the bucket: retention deletes the
	// files of expired feedback.
	if cfg.AttachmentsBucket == "" {
		fail("configuration", errMissing(config.EnvAttachmentsBucket))
	}
	s3Client, err := cfg.S3(ctx)
	if err != nil {
		fail("start", err)
	}
	store, _ := SealedStore(db, kmsClient, cfg)
	return &webhook.Function{
		Deliverer: webhook.NewDeliverer(store, webhook.Policy{}, log),
		Queue:     queue, QueueURL: queueURL, Metrics: os.Stdout,
		Objects: objects.New(s3Client, cfg.AttachmentsBucket),
	}
}

type errMissing string

func (e errMissing) Error() string { return "config: " + string(e) + " is not set" }
