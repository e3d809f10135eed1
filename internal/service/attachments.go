package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Attachments is what the service needs from the attachments bucket.
type Attachments interface {
	PresignUpload(ctx context.Context, key, contentType string, size int64, validity time.Duration) (*objects.Upload, error)
	PresignDownload(ctx context.Context, key string, validity time.Duration) (string, error)
	Head(ctx context.Context, key string) (*objects.Object, error)
	Copy(ctx context.Context, from, to string) error
	Delete(ctx context.Context, key string) error
	DeleteUser(ctx context.Context, userKey string) (int, error)
}

var _ Attachments = (*objects.Bucket)(nil)

// errNoBucket fails attachment calls of a function configured without the
// bucket (an internal error: the stack gives it to every function that
// handles attachments).
var errNoBucket = errors.New("service: no attachments bucket configured")

// AttachmentUpload is the answer to POST /v1/feedback/attachments.
type AttachmentUpload struct {
	ID        string          `json:"id"`
	Upload    *objects.Upload `json:"upload"`
	ExpiresAt string          `json:"expiresAt"`
}

// CreateAttachment presigns the upload of one attachment of the caller. The
// declared type and size are checked here and signed into the upload, so S3
// refuses any other file.
func (s *Service) CreateAttachment(ctx context.Context, call Call, req *waymark.AttachmentRequest) (*AttachmentUpload, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	ws, err := s.authorize(ctx, call, req.Workspace, req.Username, req.HMAC)
	if err != nil {
		return nil, err
	}
	if s.opts.Attachments == nil {
		return nil, errNoBucket
	}
	id := waymark.NewID()
	key := objects.UploadKey(ws.UserKey(req.Username), id)
	up, err := s.opts.Attachments.PresignUpload(ctx, key, req.ContentType, req.Size, waymark.UploadValidity)
	if err != nil {
		return nil, err
	}
	expires := s.opts.Now().Add(waymark.UploadValidity)
	return &AttachmentUpload{ID: id, Upload: up, ExpiresAt: waymark.FormatTime(expires)}, nil
}

// attach resolves the attachment ids of a feedback of userKey; it returns
// them with the ids still under the uploads prefix, which promote moves once
// everything else of the feedback is ready. An id is refused (400, naming it) when
// no upload of this user has it (another user's id included: keys are per
// user), when the upload is older than a day, or when the stored file breaks
// the limits (which S3 enforces through the upload's signature; checked
// again here, where a local engine does not). A feedback retried after its
// copy finds the attachment already there.
func (s *Service) attach(ctx context.Context, userKey string, ids []string, now time.Time) (attached []waymark.Attachment, uploaded []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	if s.opts.Attachments == nil {
		return nil, nil, errNoBucket
	}
	out := make([]waymark.Attachment, 0, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("attachments[%d]", i)
		obj, err := s.opts.Attachments.Head(ctx, objects.AttachmentKey(userKey, id))
		if errors.Is(err, objects.ErrNotFound) {
			obj, err = s.upload(ctx, userKey, id, field, now)
			uploaded = append(uploaded, id)
		}
		if err != nil {
			return nil, nil, err
		}
		if err := waymark.CheckAttachment(field, field, obj.ContentType, obj.Size); err != nil {
			return nil, nil, err
		}
		out = append(out, waymark.Attachment{ID: id, ContentType: obj.ContentType, Size: obj.Size})
	}
	return out, uploaded, nil
}

// promote copies uploads under the attachments prefix, out of reach of the
// lifecycle that removes unreferenced uploads. It runs after sealing, so an
// unreachable KMS leaves no file behind; a feedback write that fails after it
// leaves the copies, which the user's erasure removes.
func (s *Service) promote(ctx context.Context, userKey string, uploaded []string) error {
	for _, id := range uploaded {
		if err := s.opts.Attachments.Copy(ctx, objects.UploadKey(userKey, id), objects.AttachmentKey(userKey, id)); err != nil {
			return err
		}
	}
	return nil
}

// upload finds a user's upload that no feedback references yet.
func (s *Service) upload(ctx context.Context, userKey, id, field string, now time.Time) (*objects.Object, error) {
	obj, err := s.opts.Attachments.Head(ctx, objects.UploadKey(userKey, id))
	if errors.Is(err, objects.ErrNotFound) {
		return nil, waymark.Invalid(field, "no upload of this user has this id (or its upload did not complete)")
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(obj.LastModified) > waymark.UnreferencedUploadLifetime {
		return nil, waymark.Invalid(field, "the upload expired: attach within %v of uploading", waymark.UnreferencedUploadLifetime)
	}
	return obj, nil
}

// releaseUploads removes the uploads a stored feedback copied. Failing is
// harmless (the lifecycle removes them within a day), so it is not an error
// of the request.
func (s *Service) releaseUploads(ctx context.Context, userKey string, uploaded []string) {
	for _, id := range uploaded {
		_ = s.opts.Attachments.Delete(ctx, objects.UploadKey(userKey, id))
	}
}

// AttachmentLink is an attachment as the server API returns it: with a
// short-lived download URL.
type AttachmentLink struct {
	waymark.Attachment
	URL          string `json:"url"`
	URLExpiresAt string `json:"urlExpiresAt"`
}

// links presigns the downloads of a feedback's attachments.
func (s *Service) links(ctx context.Context, fb *waymark.Feedback) ([]AttachmentLink, error) {
	if len(fb.Attachments) == 0 {
		return nil, nil
	}
	if s.opts.Attachments == nil {
		return nil, errNoBucket
	}
	expires := waymark.FormatTime(s.opts.Now().Add(waymark.DownloadValidity))
	out := make([]AttachmentLink, 0, len(fb.Attachments))
	for _, a := range fb.Attachments {
		url, err := s.opts.Attachments.PresignDownload(ctx, objects.AttachmentKey(fb.UserKey, a.ID), waymark.DownloadValidity)
		if err != nil {
			return nil, err
		}
		out = append(out, AttachmentLink{Attachment: a, URL: url, URLExpiresAt: expires})
	}
	return out, nil
}
