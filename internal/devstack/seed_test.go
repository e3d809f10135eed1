package devstack_test

import (
	"context"
	"testing"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// memoryStore keeps workspaces in a map: seeding's logic needs no engine.
type memoryStore map[string]waymark.Workspace

func (m memoryStore) GetWorkspace(_ context.Context, code string) (*waymark.Workspace, error) {
	ws, ok := m[code]
	if !ok {
		return nil, waymark.ErrNotFound
	}
	return &ws, nil
}

func (m memoryStore) PutWorkspace(_ context.Context, ws *waymark.Workspace) error {
	m[ws.Code] = *ws
	return nil
}

// demo-verified signs username|expiration, on a fresh stack and on one
// persisted before the setting existed (which reads as the legacy optional).
func TestSeedDemoVerifiedRequiresExpiration(t *testing.T) {
	store := memoryStore{}
	if err := devstack.SeedDemoWorkspaces(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	if got := store[devstack.DemoVerifiedWorkspace].HMACExpiration; got != waymark.HMACExpirationRequired {
		t.Fatalf("fresh demo-verified: %q", got)
	}
	legacy := store[devstack.DemoVerifiedWorkspace]
	legacy.HMACExpiration = waymark.HMACExpirationOptional
	store[devstack.DemoVerifiedWorkspace] = legacy
	if err := devstack.SeedDemoWorkspaces(context.Background(), store); err != nil {
		t.Fatal(err)
	}
	ws := store[devstack.DemoVerifiedWorkspace]
	if ws.HMACExpiration != waymark.HMACExpirationRequired || ws.HMACSecret != devstack.DemoHMACSecret {
		t.Fatalf("persisted demo-verified: %q", ws.HMACExpiration)
	}
}
