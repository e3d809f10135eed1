package waymark

import (
	"fmt"
	"regexp"
	"time"
)

// Limits of feedback attachments (README "Attachments"). The size and type
// an upload declares are signed into its presigned upload, so S3 itself
// refuses a larger file or another type; the service checks the stored
// object again when a feedback references it.
const (
	MaxAttachmentBytes     = 5 << 20
	MaxAttachmentsPerEntry = 3
	// UploadValidity is how long a presigned upload can be used.
	UploadValidity = 5 * time.Minute
	// DownloadValidity is how long a presigned download (feedback listing,
	// export) can be used.
	DownloadValidity = 5 * time.Minute
	// UnreferencedUploadLifetime is how long an upload no feedback
	// references is kept: the bucket's lifecycle removes it after a day, and
	// the service refuses it from then on even where the lifecycle has not
	// run yet (S3 applies it lazily).
	UnreferencedUploadLifetime = 24 * time.Hour
)

// AttachmentTypes are the content types an attachment may have: the image
// formats a screenshot comes in and every browser displays.
var AttachmentTypes = []string{"image/png", "image/jpeg", "image/webp"}

// attachmentIDPattern is the shape of NewID: an id is part of an object key,
// so nothing else may reach one.
var attachmentIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Attachment is a file attached to a feedback message. It holds no personal
// data: the id is random, type and size describe the file.
type Attachment struct {
	ID          string `json:"id"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
}

// AttachmentRequest is the body of POST /v1/feedback/attachments.
type AttachmentRequest struct {
	Workspace   string `json:"workspace"`
	Username    string `json:"username"`
	HMAC        *HMAC  `json:"hmac"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
}

// Validate checks an attachment request.
func (r *AttachmentRequest) Validate() error {
	if err := validCaller(r.Workspace, r.Username, "username", r.HMAC); err != nil {
		return err
	}
	if err := CheckAttachment("contentType", "size", r.ContentType, r.Size); err != nil {
		return err
	}
	return nil
}

// CheckAttachment checks a content type and a size against the attachment
// limits, naming the field that breaks them.
func CheckAttachment(typeField, sizeField, contentType string, size int64) error {
	allowed := false
	for _, t := range AttachmentTypes {
		allowed = allowed || t == contentType
	}
	if !allowed {
		return Invalid(typeField, "must be one of %v", AttachmentTypes)
	}
	if size < 1 || size > MaxAttachmentBytes {
		return Invalid(sizeField, "must be from 1 to %d bytes", MaxAttachmentBytes)
	}
	return nil
}

// validAttachmentIDs checks the ids a feedback references: at most
// MaxAttachmentsPerEntry, each of NewID's shape, none twice.
func validAttachmentIDs(ids []string) error {
	if len(ids) > MaxAttachmentsPerEntry {
		return Invalid("attachments", "more than %d attachments", MaxAttachmentsPerEntry)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		field := fmt.Sprintf("attachments[%d]", i)
		if !attachmentIDPattern.MatchString(id) {
			return Invalid(field, "not an attachment id")
		}
		if seen[id] {
			return Invalid(field, "attached twice")
		}
		seen[id] = true
	}
	return nil
}
