package gateway

import (
	"log/slog"
	"net/http"
	"time"
)

// logRequest writes the access-log line of a request: method, route, status,
// latency, request id, and seq, never the body, query or headers, which may
// carry user data.
//
// seq numbers the requests in the order they reached the gateway, from 1.
// The lines are written when the answers are, so they may come out of that
// order; with seq a reader can still tell when it has seen every request
// that arrived before a given one: the end-to-end tests send a request of
// their own after an action, and once the log holds it and every lower seq,
// nothing the action caused is still to be logged.
func (g *gateway) logRequest(r *http.Request, seq uint64, id, route string, status int, start time.Time) {
	if g.opts.Logger == nil {
		return
	}
	g.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("latency", time.Since(start)),
		slog.String("requestId", id),
		slog.Uint64("seq", seq),
	)
}
