package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/waymarkhq/waymark/internal/devstack"
)

func init() {
	register("dev", "run Waymark locally: DynamoDB Local, local-kms and the API on 127.0.0.1", runDev)
}

func runDev(ctx context.Context, _ globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	port := fs.Int("port", 3000, "port of the API on 127.0.0.1 (0: any free port)")
	persist := fs.String("persist", "", "keep the engines' data in this directory between runs")
	quiet := fs.Bool("quiet", false, "do not print the API's request log")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a certificate for 127.0.0.1 and localhost made at start (its CA: the state file's caCert)")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	dir, err := stateDir()
	if err != nil {
		return err
	}
	var apiLog io.Writer = stderr
	if *quiet {
		apiLog = io.Discard
	}
	fmt.Fprintln(stdout, "Starting DynamoDB Local and local-kms...")
	dev, err := devstack.Start(ctx, devstack.Options{
		Port:       *port,
		PersistDir: *persist,
		StateDir:   dir,
		Log:        apiLog,
		TLS:        *useTLS,
	})
	if err != nil {
		return err
	}
	s := dev.State
	fmt.Fprintf(stdout, `Waymark is running.
  API:        %s  (POST /v1/identify, /v1/events, /v1/state, /v1/feedback, /v1/feedback/attachments)
  demo page:  %s
  snippet:    %s
  workspace:  %s  (also %s with HMAC secret %q, and %s allowing %s)
  DynamoDB:   %s
  KMS:        %s
  S3:         %s  (bucket %s: feedback attachments, in memory)
  state file: %s
`, s.API, s.Demo, s.Snippet, s.Workspace, devstack.DemoVerifiedWorkspace, devstack.DemoHMACSecret, devstack.DemoOriginsWorkspace,
		devstack.DemoAllowedOrigin, s.DynamoDB, s.KMS, s.S3, s.Bucket, filepath.Join(dir, devstack.StateFile))
	if s.CACert != "" {
		fmt.Fprintf(stdout, "  CA:         %s  (made for this run; trust it, e.g. curl --cacert, or let the browser accept the certificate)\n", s.CACert)
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case err := <-dev.Done():
		// Said at once: every request fails from now on. The data of an
		// in-memory stack is lost; a --persist one starts again as it was.
		fmt.Fprintf(stderr, "waymark: the local stack failed: %v\n", err)
		fmt.Fprintln(stdout, "Stopping...")
		dev.Stop()
		return errors.New("dev: stopped because the local stack failed (see above); start it again with `make dev`")
	}
	fmt.Fprintln(stdout, "Stopping...")
	return dev.Stop()
}

// stateDir is where `waymark dev` writes its state file and `waymark
// --local` reads it: $WAYMARK_STATE_DIR, else .waymark at the checkout root.
func stateDir() (string, error) {
	if dir := os.Getenv("WAYMARK_STATE_DIR"); dir != "" {
		return dir, nil
	}
	root, err := checkoutRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".waymark"), nil
}

// checkoutRoot is the directory of the go.mod above the working directory,
// so that `waymark dev` and `waymark --local` agree on the state directory
// wherever in the checkout they run; outside a checkout it is the working
// directory.
func checkoutRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return wd, nil
		}
	}
}
