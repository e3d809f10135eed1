package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// workspaceCache keeps workspaces in memory so that a warm function serves
// a state read with one DynamoDB request and opens workspace secrets with
// no KMS call. Unknown codes are remembered briefly too, so a flood of calls
// with a wrong code does not become a flood of reads.
type workspaceCache struct {
	store interface {
		GetWorkspace(ctx context.Context, code string) (*waymark.Workspace, error)
	}
	now func() time.Time

	mu      sync.Mutex
	entries map[string]workspaceEntry
}

type workspaceEntry struct {
	ws      *waymark.Workspace
	expires time.Time
}

// workspaceTTL is how long a workspace is cached: a change to a workspace
// (origins, identity verification, disabling) reaches every warm function
// within this time (README).
const workspaceTTL = 30 * time.Second

// unknownWorkspaceTTL is short so that a workspace created a moment ago
// works almost at once.
const unknownWorkspaceTTL = 5 * time.Second

// maxCachedWorkspaces bounds memory when callers send many distinct codes.
const maxCachedWorkspaces = 10000

func newWorkspaceCache(store interface {
	GetWorkspace(ctx context.Context, code string) (*waymark.Workspace, error)
}, now func() time.Time) *workspaceCache {
	return &workspaceCache{store: store, now: now, entries: map[string]workspaceEntry{}}
}

func (c *workspaceCache) get(ctx context.Context, code string) (*waymark.Workspace, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[code]
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		ws, err := c.store.GetWorkspace(ctx, code)
		switch {
		case errors.Is(err, waymark.ErrNotFound):
			e = workspaceEntry{expires: now.Add(unknownWorkspaceTTL)}
		case err != nil:
			return nil, err
		default:
			e = workspaceEntry{ws: ws, expires: now.Add(workspaceTTL)}
		}
		c.mu.Lock()
		if len(c.entries) >= maxCachedWorkspaces {
			clear(c.entries)
		}
		c.entries[code] = e
		c.mu.Unlock()
	}
	if e.ws == nil {
		return nil, waymark.Errorf(waymark.EUnknownWorkspace, "no workspace has this code")
	}
	return e.ws, nil
}
