// Package objects keeps feedback attachments in an S3 bucket: presigned
// uploads whose limits S3 enforces through the signature, short-lived
// presigned downloads, and the few calls the service makes itself (head,
// copy, delete). The deployed stack's bucket and a local S3-protocol server
// (gofakes3, started by internal/localstack) are driven the same way.
//
// Object keys hold no personal data: the workspace's public code, the keyed
// hash of the username (waymark.Workspace.UserKey) and a random id.
package objects

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Key prefixes. Uploads no feedback references stay under UploadsPrefix,
// which the bucket's lifecycle empties after a day; a feedback copies its
// attachments under AttachmentsPrefix, which erasure empties for a user and
// retention (internal/webhook) for an expired feedback.
const (
	UploadsPrefix     = "uploads/"
	AttachmentsPrefix = "attachments/"
)

// ErrNotFound is returned for an object that does not exist.
var ErrNotFound = errors.New("objects: no such object")

// UserPrefix is the part of every key of one user: <workspace>/<keyed hash>/.
// A user key is "<code>#<hash>" (waymark.Workspace.UserKey); '#' would need
// escaping in every URL, '/' lets a listing by prefix find the user's objects.
func UserPrefix(userKey string) string {
	return strings.Replace(userKey, "#", "/", 1) + "/"
}

// UploadKey is where an upload of a user lands.
func UploadKey(userKey, id string) string { return UploadsPrefix + UserPrefix(userKey) + id }

// AttachmentKey is where an attachment of a user's feedback is kept.
func AttachmentKey(userKey, id string) string {
	return AttachmentsPrefix + UserPrefix(userKey) + id
}

// Upload is a presigned browser upload: a multipart/form-data POST of
// Fields and then the file (as the form's last field, "file") to URL.
type Upload struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

// Object is what a head of an object tells.
type Object struct {
	ContentType  string
	Size         int64
	LastModified time.Time
}

// Bucket is the attachments bucket.
type Bucket struct {
	client  *s3.Client
	presign *s3.PresignClient
	name    string
}

// New wraps a client of the bucket named name.
func New(client *s3.Client, name string) *Bucket {
	return &Bucket{client: client, presign: s3.NewPresignClient(client), name: name}
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// UploadConditions are the conditions of an upload's POST policy besides
// the bucket, key and signature fields the SDK adds: S3 refuses a file of
// another size or content type than the one the caller declared (so never
// one above the limits the service checked the declaration against).
func UploadConditions(contentType string, size int64) []any {
	return []any{
		map[string]string{"Content-Type": contentType},
		[]any{"content-length-range", size, size},
	}
}

// PresignUpload signs a POST upload of exactly size bytes of contentType to
// key, valid for validity.
func (b *Bucket) PresignUpload(ctx context.Context, key, contentType string, size int64, validity time.Duration) (*Upload, error) {
	req, err := b.presign.PresignPostObject(ctx, &s3.PutObjectInput{Bucket: &b.name, Key: &key}, func(o *s3.PresignPostOptions) {
		o.Expires = validity
		o.Conditions = UploadConditions(contentType, size)
	})
	if err != nil {
		return nil, fmt.Errorf("objects: presign upload: %w", err)
	}
	fields := map[string]string{"Content-Type": contentType}
	for k, v := range req.Values {
		fields[k] = v
	}
	return &Upload{Method: "POST", URL: req.URL, Fields: fields}, nil
}

// PresignDownload signs a GET of key, valid for validity.
func (b *Bucket) PresignDownload(ctx context.Context, key string, validity time.Duration) (string, error) {
	req, err := b.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &b.name, Key: &key}, s3.WithPresignExpires(validity))
	if err != nil {
		return "", fmt.Errorf("objects: presign download: %w", err)
	}
	return req.URL, nil
}

// Head reads an object's type, size and time; ErrNotFound when it does not
// exist.
func (b *Bucket) Head(ctx context.Context, key string) (*Object, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.name, Key: &key})
	if err != nil {
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NotFound" || apiErr.ErrorCode() == "NoSuchKey") {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("objects: head: %w", err)
	}
	return &Object{ContentType: aws.ToString(out.ContentType), Size: aws.ToInt64(out.ContentLength), LastModified: aws.ToTime(out.LastModified)}, nil
}

// Copy copies an object within the bucket, keeping its content type. A
// repeat of it writes the same object again.
func (b *Bucket) Copy(ctx context.Context, from, to string) error {
	_, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b.name, Key: &to, CopySource: aws.String(b.name + "/" + from)})
	if err != nil {
		return fmt.Errorf("objects: copy: %w", err)
	}
	return nil
}

// Delete removes an object; removing a missing one is no error.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if _, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.name, Key: &key}); err != nil {
		return fmt.Errorf("objects: delete: %w", err)
	}
	return nil
}

// DeleteUser removes every object of a user (uploads and attachments) and
// says how many there were.
func (b *Bucket) DeleteUser(ctx context.Context, userKey string) (int, error) {
	n := 0
	for _, prefix := range []string{UploadsPrefix, AttachmentsPrefix} {
		keys, err := b.List(ctx, prefix+UserPrefix(userKey))
		if err != nil {
			return n, err
		}
		for _, k := range keys {
			if err := b.Delete(ctx, k); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// List lists the keys under a prefix.
func (b *Bucket) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.name, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("objects: list: %w", err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}
