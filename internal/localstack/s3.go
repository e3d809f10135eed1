package localstack

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// AttachmentsBucket is the name of the local attachments bucket.
const AttachmentsBucket = "waymark-attachments"

// S3Server is a local S3-protocol server (gofakes3, in process, in memory)
// on a loopback port, holding the attachments bucket.
//
// It speaks enough of S3 for Waymark (browser POST uploads, HEAD, GET, copy,
// delete, list) but checks no signature: neither a presigned URL's
// expiration nor a POST policy's conditions (content-length-range,
// Content-Type) are enforced, and CORS allows any origin. docs/deploy.md
// ("Local engines") lists what only AWS enforces and how the tests cover it.
type S3Server struct {
	Endpoint string // http://127.0.0.1:PORT
	server   *http.Server
	done     chan error
}

// StartS3 starts the server and creates the bucket.
func StartS3() (*S3Server, error) {
	backend := s3mem.New()
	if err := backend.CreateBucket(AttachmentsBucket); err != nil {
		return nil, fmt.Errorf("localstack: s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithInsecureCORS(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("localstack: s3: %w", err)
	}
	s := &S3Server{Endpoint: "http://" + l.Addr().String(), server: &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second}, done: make(chan error, 1)}
	go func() { s.done <- s.server.Serve(l) }()
	return s, nil
}

// Stop ends the server.
func (s *S3Server) Stop() error {
	err := s.server.Close()
	if served := <-s.done; !errors.Is(served, http.ErrServerClosed) {
		err = errors.Join(err, served)
	}
	return err
}
