package devstack

import (
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// DemoServerKey is the server API key of the demo workspace. Like
// DemoHMACSecret it protects nothing and exists only in local stacks: the
// saved server API events in events-samples/ carry it, so they work on every
// machine. It has the shape of the keys waymark.Workspace.AddKey makes.
const DemoServerKey = "wmk_" + DemoWorkspace + "_" + demoServerKeyID + "_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const demoServerKeyID = "devonly1"

// AddDemoServerKey gives a demo workspace DemoServerKey unless it has it
// already, and reports whether it added it. Only the key's hash is stored, as
// for any key. Only the open demo workspace gets one: the saved server API
// events act there.
func AddDemoServerKey(ws *waymark.Workspace, now time.Time) bool {
	if ws.Code != DemoWorkspace {
		return false
	}
	for _, k := range ws.Keys {
		if k.ID == demoServerKeyID {
			return false
		}
	}
	ws.Keys = append(ws.Keys, waymark.APIKey{ID: demoServerKeyID, Hash: waymark.HashAPIKey(DemoServerKey), CreatedAt: now.UTC()})
	return true
}
