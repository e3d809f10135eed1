// Package wiring builds the object graph of a function from its
// configuration; the functions' main packages, `waymark dev`, `make invoke`
// and the tests all wire the service the same way through it.
package wiring

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/envelope"
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
	env := envelope.New(kmsClient, cfg.KMSKeyID, envelope.Options{})
	store := dynamo.New(db, env, cfg.Tables)
	svc := service.New(store, service.Options{})
	return &Graph{API: apigw.New(svc, log), Service: svc, Store: store, Envelope: env}, nil
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
