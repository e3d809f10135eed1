// Package localstack starts the local engines Waymark runs against without AWS:
// DynamoDB Local and local-kms, and an in-process S3-protocol server for
// feedback attachments (s3.go). Tests, `waymark dev` and `make invoke` use it,
// so every one of them gets the same tables (from internal/schema) and the same
// kind of KMS key as the deployed stack.
//
// Both engines run as child processes in their own process group, on ports the
// kernel picks, and Stop ends them. DynamoDB Local listens on 127.0.0.1 only;
// local-kms cannot be told an address and listens on all interfaces, on a
// random high port.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"github.com/waymarkhq/waymark/internal/config"
)

// Options for Start.
type Options struct {
	// PersistDir keeps the data across runs when set: DynamoDB's database in
	// PersistDir/dynamodb and local-kms's keys in PersistDir/kms. Empty means
	// everything lives in memory (KMS in a temporary directory) and is gone
	// after Stop.
	PersistDir string
	// TablePrefix is put before each logical table name to make the physical
	// name (config.LocalTables).
	TablePrefix string
	// Log receives the engines' output, each line prefixed with the engine's
	// name. Nil discards it.
	Log io.Writer
}

// Stack is a running pair of local engines with Waymark's tables and key.
type Stack struct {
	DynamoDBEndpoint string // http://127.0.0.1:PORT
	KMSEndpoint      string // http://127.0.0.1:PORT
	Region           string // config.LocalRegion
	// KMSKeyID is the ARN of the customer-managed key behind KeyAlias.
	KMSKeyID string
	// Tables maps a logical table name to its physical name.
	Tables map[string]string
	// S3Endpoint serves AttachmentsBucket.
	S3Endpoint string

	dynamo   *Engine
	s3       *S3Server
	kms      *Engine
	tempDir  string
	died     chan error    // see Died
	stopping chan struct{} // closed when Stop begins
	stopOnce sync.Once
	stopErr  error
}

// KeyAlias is the alias of the local stack's customer-managed key.
const KeyAlias = "alias/waymark-local"

// Start starts DynamoDB Local and local-kms, waits until both answer, creates
// every table of schema.All() that does not exist yet and creates (or, with
// persisted data, finds) the KMS key behind KeyAlias. ctx bounds the start
// only: the engines run until Stop.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	tempDir, err := os.MkdirTemp("", "waymark-local-")
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	s := &Stack{
		Region:   config.LocalRegion,
		Tables:   config.LocalTables(opts.TablePrefix),
		tempDir:  tempDir,
		died:     make(chan error, 1),
		stopping: make(chan struct{}),
	}

	dynamoData, kmsData := "", filepath.Join(tempDir, "kms")
	if opts.PersistDir != "" {
		dynamoData = filepath.Join(opts.PersistDir, "dynamodb")
		kmsData = filepath.Join(opts.PersistDir, "kms")
	}
	for _, dir := range []string{dynamoData, kmsData} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			s.Stop()
			return nil, fmt.Errorf("localstack: %w", err)
		}
	}

	// The two engines are independent and each takes a while on a cold
	// machine (fetching DynamoDB Local, compiling local-kms), so they start
	// side by side.
	log := newSharedLog(opts.Log)
	var wg sync.WaitGroup
	var dynamoErr, kmsErr error
	wg.Go(func() {
		dir, err := EnsureDynamoDBLocal(ctx)
		if err != nil {
			dynamoErr = err
			return
		}
		s.dynamo, dynamoErr = StartDynamoDB(ctx, DynamoDBOptions{Dir: dir, DBPath: dynamoData, Log: log.prefixed("dynamodb")})
	})
	wg.Go(func() {
		bin, err := ToolPath(ctx, LocalKMSTool)
		if err != nil {
			kmsErr = err
			return
		}
		s.kms, kmsErr = StartKMS(ctx, KMSOptions{Binary: bin, DataPath: kmsData, Log: log.prefixed("kms")})
	})
	wg.Wait()
	if err := errors.Join(dynamoErr, kmsErr); err != nil {
		s.Stop()
		return nil, err
	}
	s.DynamoDBEndpoint, s.KMSEndpoint = s.dynamo.Endpoint, s.kms.Endpoint
	if s.s3, err = StartS3(); err != nil {
		s.Stop()
		return nil, err
	}
	s.S3Endpoint = s.s3.Endpoint

	db, kmsClient, err := s.Config().Clients(ctx)
	if err != nil {
		s.Stop()
		return nil, err
	}
	if err := CreateTables(ctx, db, s.Tables); err != nil {
		s.Stop()
		return nil, err
	}
	if s.KMSKeyID, err = EnsureKey(ctx, kmsClient, KeyAlias); err != nil {
		s.Stop()
		return nil, err
	}
	s.watch(s.dynamo, s.kms)
	return s, nil
}

// watch reports on Died the first of the engines to exit before Stop began.
func (s *Stack) watch(engines ...*Engine) {
	for _, e := range engines {
		go func() {
			select {
			case <-e.done:
			case <-s.stopping:
				return
			}
			// Stop closes stopping before it signals an engine, so an
			// engine that exited because of Stop is never reported.
			select {
			case <-s.stopping:
				return
			default:
			}
			select {
			case s.died <- e.exitedError():
			default: // another engine was reported first
			}
		}()
	}
}

// Died receives an error, once, if an engine exits while the stack runs (it
// crashed, or was killed): whatever uses the stack can no longer work, and
// says so at once rather than through failing requests. Nothing is sent
// once Stop has begun.
func (s *Stack) Died() <-chan error { return s.died }

// DynamoDBPID is the process id of DynamoDB Local.
func (s *Stack) DynamoDBPID() int { return s.dynamo.cmd.Process.Pid }

// KMSPID is the process id of local-kms.
func (s *Stack) KMSPID() int { return s.kms.cmd.Process.Pid }

// Config is the configuration that points a function at this stack.
func (s *Stack) Config() config.Config {
	return config.Config{
		Tables:            maps.Clone(s.Tables),
		KMSKeyID:          s.KMSKeyID,
		DynamoDBEndpoint:  s.DynamoDBEndpoint,
		KMSEndpoint:       s.KMSEndpoint,
		AttachmentsBucket: AttachmentsBucket,
		S3Endpoint:        s.S3Endpoint,
	}
}

// Stop ends both engines and removes the stack's temporary files. It may be
// called more than once; later calls return the first call's result.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		engines := []*Engine{s.dynamo, s.kms}
		errs := make([]error, len(engines)+1)
		var wg sync.WaitGroup
		for i, e := range engines {
			if e != nil {
				wg.Go(func() { errs[i] = e.Stop() })
			}
		}
		wg.Wait()
		errs[len(engines)] = os.RemoveAll(s.tempDir)
		if s.s3 != nil {
			errs = append(errs, s.s3.Stop())
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
