package invoke

import (
	"context"
	"io"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// StartStack starts the local engines with the demo workspaces `make dev`
// seeds, which the saved events in events-samples/ name. It is the stack of
// an invocation made while no `make dev` runs, and of the tests.
func StartStack(ctx context.Context, opts localstack.Options) (*localstack.Stack, error) {
	stack, err := localstack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	graph, err := wiring.New(ctx, stack.Config(), wiring.Logger(io.Discard, "error"))
	if err == nil {
		err = devstack.SeedDemoWorkspaces(ctx, graph.Store)
	}
	if err != nil {
		stack.Stop()
		return nil, err
	}
	return stack, nil
}
