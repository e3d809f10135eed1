// Package wiring builds the object graph of a function from its
// configuration; the functions' main packages, `waymark dev`, `make invoke`
// and the tests all wire the service the same way through it.
package wiring

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/service"
)

// Graph is a wired Waymark.
type Graph struct {
	API      *apigw.API
	Service  *service.Service
	Store    *dynamo.Store
	Envelope *envelope.Envelope
}

// New wires the store, envelope, service and API for cfg.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Graph, error) {
	db, kmsClient, err := cfg.Clients(ctx)
	if err != nil {
		return nil, err
	}
	store, env := SealedStore(db, kmsClient, cfg)
	opts := service.Options{}
	s3Client, err := cfg.S3(ctx)
	if err != nil {
		return nil, err
	}
	if s3Client != nil {
		opts.Attachments = objects.New(s3Client, cfg.AttachmentsBucket)
	}
	svc := service.New(store, opts)
	return &Graph{API: apigw.New(svc, log), Service: svc, Store: store, Envelope: env}, nil
}

// SealedStore builds the store with its envelope, the envelope sharing each
// workspace's sealing key between instances through the Workspaces table.
func SealedStore(db dynamo.DynamoDB, kmsClient envelope.KMS, cfg config.Config) (*dynamo.Store, *envelope.Envelope) {
	env := envelope.New(kmsClient, cfg.KMSKeyID, envelope.Options{Board: dynamo.NewKeyBoard(db, cfg.Tables)})
	store := dynamo.New(db, env, cfg.Tables)
	if cfg.DynamoDBEndpoint != "" {
		// A local engine: DynamoDB Local takes transactions of 10 items.
		store.LimitTransactions(localTransactItems)
	}
	return store, env
}

// localTransactItems is the longest transaction DynamoDB Local takes.
const localTransactItems = 10

// FromEnv wires a function from its environment, logging to stdout. A
// function that cannot start exits with the reason in its log, so the
// misconfiguration shows at the first invocation rather than as 500s.
func FromEnv(ctx context.Context) *Graph {
	cfg, err := config.FromEnv()
	log := Logger(os.Stdout, cfg.LogLevel)
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		os.Exit(1)
	}
	graph, err := New(ctx, cfg, log)
	if err != nil {
		log.Error("start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	return graph
}

// Logger is the JSON logger every function uses, at the level LOG_LEVEL names.
func Logger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
