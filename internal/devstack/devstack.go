// Package devstack runs Waymark on a laptop: DynamoDB Local and local-kms on
// free loopback ports, the tables and key, fixed demo workspaces, and the
// route table served on 127.0.0.1 through the local gateway, next to the
// browser snippet and its demo page. `waymark dev` is a thin command over it;
// `waymark --local ...` finds the running stack through the state file it
// writes.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/waymarkhq/waymark/internal/analytics"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/gateway"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
	"github.com/waymarkhq/waymark/snippet"
)

// StateFile is the file, in the state directory, that describes the running
// stack.
const StateFile = "dev.json"

// State is what `waymark dev` writes for other commands and tools.
type State struct {
	API      string `json:"api"`
	DynamoDB string `json:"dynamodb"`
	KMS      string `json:"kms"`
	// S3 serves Bucket, the attachments bucket (an in-process engine: its
	// files live as long as `waymark dev` runs, even with --persist).
	S3        string            `json:"s3"`
	Bucket    string            `json:"bucket"`
	Region    string            `json:"region"`
	Workspace string            `json:"workspace"`
	KMSKeyID  string            `json:"kmsKeyId"`
	Tables    map[string]string `json:"tables"`
	PID       int               `json:"pid"`
	// DynamoDBPID and KMSPID are the engines' processes.
	DynamoDBPID int `json:"dynamodbPid"`
	KMSPID      int `json:"kmsPid"`
	// Demo and Snippet are the URLs of the demo page and of waymark.js,
	// served next to the API.
	Demo    string `json:"demo"`
	Snippet string `json:"snippet"`
	// CACert, with TLS, is the file of the certificate authority that
	// signed the API's certificate.
	CACert string `json:"caCert,omitempty"`
}

// Config is the function configuration that points at the running stack.
func (s State) Config() config.Config {
	return config.Config{Tables: s.Tables, KMSKeyID: s.KMSKeyID, DynamoDBEndpoint: s.DynamoDB, KMSEndpoint: s.KMS,
		S3Endpoint: s.S3, AttachmentsBucket: s.Bucket}
}

// Load reads the state of the stack `waymark dev` runs from dir.
func Load(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("no local stack is running here (%s not found): start one with `make dev`", filepath.Join(dir, StateFile))
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return s, nil
}

// Options configure Start.
type Options struct {
	// Port is the API's port on 127.0.0.1 (0 picks a free one).
	Port int
	// PersistDir keeps the engines' data between runs ("" = in memory).
	PersistDir string
	// StateDir receives the state file (for example .waymark).
	StateDir string
	// Log receives the API's JSON logs; EngineLog the engines' output.
	Log       io.Writer
	EngineLog io.Writer
	// TLS serves HTTPS, with a certificate for 127.0.0.1 and localhost
	// made at start (see CAFile), so that local calls are HTTPS like the
	// deployed API's.
	TLS bool
}

// Dev is a running local stack.
type Dev struct {
	State  State
	stack  *localstack.Stack
	server *http.Server
	served chan error // what the API server's Serve returned
	failed chan error // see Done
	dir    string
	// stopDeliverer ends the webhook deliverer (webhook.go), which then
	// sets delivererErr and closes delivererDone: Stop may run twice.
	stopDeliverer context.CancelFunc
	delivererDone chan struct{}
	delivererErr  error
	// stopAnalytics stops the content analytics' aggregator.
	stopAnalytics func()
}

// Demo workspaces seeded at every start, with fixed codes so that saved
// sample events and the README's examples work on any machine.
const (
	DemoWorkspace         = "demo"
	DemoVerifiedWorkspace = "demo-verified"
	DemoOriginsWorkspace  = "demo-origins"
	// DemoHMACSecret is the identity-verification secret of the verified
	// demo workspace. It protects nothing: it exists only in local stacks.
	DemoHMACSecret = "dev-only-hmac-secret"
	// DemoAllowedOrigin is the one origin the origins demo workspace allows.
	DemoAllowedOrigin = "http://localhost:8080"
)

// Start starts the engines, creates what is missing and serves the API. A
// state file left by an earlier run that did not stop cleanly is replaced.
func Start(ctx context.Context, opts Options) (*Dev, error) {
	if opts.StateDir == "" {
		opts.StateDir = ".waymark"
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(filepath.Join(opts.StateDir, StateFile))
	_ = os.Remove(filepath.Join(opts.StateDir, CAFile))
	stack, err := localstack.Start(ctx, localstack.Options{PersistDir: opts.PersistDir, Log: opts.EngineLog})
	if err != nil {
		return nil, err
	}
	d := &Dev{stack: stack, dir: opts.StateDir}
	if err := d.serve(ctx, opts); err != nil {
		if d.stopDeliverer != nil {
			d.stopDeliverer()
			<-d.delivererDone
		}
		_ = stack.Stop()
		return nil, err
	}
	d.failed = make(chan error, 1)
	go func() {
		select {
		case err := <-d.served:
			d.failed <- fmt.Errorf("the API server stopped: %w", err)
		case err := <-stack.Died():
			d.failed <- err
		}
	}()
	return d, nil
}

func (d *Dev) serve(ctx context.Context, opts Options) error {
	cfg := d.stack.Config()
	logOut := opts.Log
	if logOut == nil {
		logOut = io.Discard
	}
	log := wiring.Logger(logOut, "info")
	graph, err := wiring.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := SeedDemoWorkspaces(ctx, graph.Store); err != nil {
		return err
	}
	if err := d.startDeliverer(cfg, graph.Store, logOut); err != nil {
		return err
	}
	// The content analytics' aggregator, over DynamoDB Local's stream of
	// the ContentState table: the same code the deployed function runs.
	streams, err := cfg.StreamsClient(context.Background())
	if err != nil {
		return err
	}
	poller := analytics.NewPoller(streams, analytics.New(graph.Store, log), cfg.Tables[schema.ContentStateTable], log)
	pollCtx, stopPoller := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		if err := poller.Run(pollCtx); err != nil {
			log.Error("analytics aggregator", slog.String("error", err.Error()))
		}
	}()
	d.stopAnalytics = func() { stopPoller(); <-polled }
	handlers := map[string]gateway.Handler{}
	for name, h := range graph.API.Handlers() {
		handlers[name] = gateway.Handler(h)
	}
	site, err := siteHandler(gateway.New(handlers, gateway.Options{Logger: log}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", opts.Port))
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d: %w (another `waymark dev` running? choose another --port)", opts.Port, err)
	}
	scheme, caFile := "http", ""
	// The server's own errors (a client refusing the dev certificate, say)
	// go to the API's log rather than to the terminal.
	d.server = &http.Server{Handler: site, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if opts.TLS {
		cert, err := newDevCertificate(time.Now())
		if err == nil {
			caFile = filepath.Join(d.dir, CAFile)
			err = os.WriteFile(caFile, cert.caPEM, 0o644)
		}
		if err != nil {
			ln.Close()
			return err
		}
		scheme, d.server.TLSConfig = "https", cert.tlsConfig()
	}
	d.served = make(chan error, 1)
	go func() {
		if opts.TLS {
			// The certificate is in TLSConfig already.
			d.served <- d.server.ServeTLS(ln, "", "")
			return
		}
		d.served <- d.server.Serve(ln)
	}()
	api := scheme + "://" + ln.Addr().String()
	d.State = State{
		API:         api,
		DynamoDB:    cfg.DynamoDBEndpoint,
		KMS:         cfg.KMSEndpoint,
		S3:          cfg.S3Endpoint,
		Bucket:      cfg.AttachmentsBucket,
		Region:      config.LocalRegion,
		Workspace:   DemoWorkspace,
		KMSKeyID:    cfg.KMSKeyID,
		Tables:      cfg.Tables,
		PID:         os.Getpid(),
		DynamoDBPID: d.stack.DynamoDBPID(),
		KMSPID:      d.stack.KMSPID(),
		Demo:        api + DemoPath,
		Snippet:     api + SnippetPath,
		CACert:      caFile,
	}
	b, _ := json.MarshalIndent(d.State, "", "  ")
	if err := os.WriteFile(filepath.Join(d.dir, StateFile), append(b, '\n'), 0o600); err != nil {
		return err
	}
	return WriteSAMEnvVars(d.dir, d.State)
}

// Paths of the browser files served next to the API. They lie outside /v1,
// so no route of the table can ever collide with them.
const (
	DemoPath    = "/demo/"
	SnippetPath = "/snippet/waymark.js"
)

// siteHandler serves the demo page and the snippet from the embedded files,
// and everything else through the gateway, which answers the API routes
// (and, for any other path, API Gateway's own 404).
func siteHandler(api http.Handler) (http.Handler, error) {
	demo, err := fs.Sub(snippet.Files, "demo")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET "+DemoPath, http.StripPrefix(DemoPath, http.FileServerFS(invalidIsNotFound{demo})))
	mux.HandleFunc("GET "+SnippetPath, func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, snippet.Files, "waymark.js")
	})
	return mux, nil
}

// invalidIsNotFound reports a name the file system cannot hold (one that
// fs.ValidPath refuses, such as the invalid UTF-8 of /demo/%ff) as not found.
// http.FileServerFS answers fs.ErrInvalid with a 500, as if the server had
// failed; the client asked for a file that does not exist.
type invalidIsNotFound struct{ fs.FS }

func (f invalidIsNotFound) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if errors.Is(err, fs.ErrInvalid) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, err
}

// Done receives an error when the stack fails by itself: an engine exited
// (crashed, or was killed) or the API server stopped. The stack cannot serve
// after that, so the caller should say so and Stop; restarting the engine is
// not attempted, since an in-memory engine's data is gone with it. Stop itself
// may also send on Done, which then means nothing.
func (d *Dev) Done() <-chan error { return d.failed }

// Stop stops the API and the engines and removes the state file.
func (d *Dev) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if d.server != nil {
		errs = append(errs, d.server.Shutdown(ctx))
	}
	if d.stopDeliverer != nil {
		d.stopDeliverer()
		<-d.delivererDone
		errs = append(errs, d.delivererErr)
	}
	if d.stopAnalytics != nil {
		d.stopAnalytics()
	}
	errs = append(errs, d.stack.Stop())
	_ = os.Remove(filepath.Join(d.dir, StateFile))
	if d.State.CACert != "" {
		_ = os.Remove(d.State.CACert)
	}
	return errors.Join(errs...)
}

// WorkspaceStore is what seeding needs from the store.
type WorkspaceStore interface {
	GetWorkspace(ctx context.Context, code string) (*waymark.Workspace, error)
	PutWorkspace(ctx context.Context, ws *waymark.Workspace) error
}

// SeedDemoWorkspaces creates the demo workspaces that do not exist yet; an
// existing one (a persisted stack) is kept, with its users' keys.
func SeedDemoWorkspaces(ctx context.Context, store WorkspaceStore) error {
	demos := []waymark.NewWorkspaceOptions{
		{Code: DemoWorkspace, Name: "Demo"},
		{Code: DemoVerifiedWorkspace, Name: "Demo with identity verification", IdentityVerification: true},
		{Code: DemoOriginsWorkspace, Name: "Demo with an origin allow-list", Origins: []string{DemoAllowedOrigin}},
	}
	for _, opts := range demos {
		ws, err := store.GetWorkspace(ctx, opts.Code)
		if err == nil {
			// A persisted stack from before the demo server key, or before
			// the HMAC message form was a setting, gets what it lacks.
			addedKey := AddDemoServerKey(ws, time.Now())
			if settled := settleHMACExpiration(ws, opts); addedKey || settled {
				if err := store.PutWorkspace(ctx, ws); err != nil && !errors.Is(err, waymark.ErrConflict) {
					return err
				}
			}
			continue
		}
		if !errors.Is(err, waymark.ErrNotFound) {
			return err
		}
		ws, _, err = waymark.NewWorkspace(opts, time.Now())
		if err != nil {
			return err
		}
		if ws.IdentityVerification {
			ws.HMACSecret = DemoHMACSecret
		}
		AddDemoServerKey(ws, time.Now())
		if err := store.PutWorkspace(ctx, ws); err != nil && !errors.Is(err, waymark.ErrConflict) {
			return err
		}
	}
	return nil
}

// settleHMACExpiration gives a persisted demo workspace the message form
// its options name (required unless they say otherwise) and says whether
// that changed it: a stack persisted before the setting existed reads as
// the legacy "optional", which a demo must not show.
func settleHMACExpiration(ws *waymark.Workspace, opts waymark.NewWorkspaceOptions) bool {
	want := opts.HMACExpiration
	if want == "" {
		want = waymark.HMACExpirationRequired
	}
	if ws.HMACExpiration == want {
		return false
	}
	ws.HMACExpiration = want
	return true
}
