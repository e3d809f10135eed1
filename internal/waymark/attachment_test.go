package waymark

import (
	"errors"
	"strings"
	"testing"
)

func fieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func TestAttachmentRequestLimits(t *testing.T) {
	ok := AttachmentRequest{Workspace: "demo", Username: "ada@example.com", ContentType: "image/png", Size: 1}
	for name, tc := range map[string]struct {
		change func(*AttachmentRequest)
		field  string
	}{
		"smallest":     {func(*AttachmentRequest) {}, ""},
		"largest":      {func(r *AttachmentRequest) { r.Size = MaxAttachmentBytes }, ""},
		"jpeg":         {func(r *AttachmentRequest) { r.ContentType = "image/jpeg" }, ""},
		"webp":         {func(r *AttachmentRequest) { r.ContentType = "image/webp" }, ""},
		"one too many": {func(r *AttachmentRequest) { r.Size = MaxAttachmentBytes + 1 }, "size"},
		"empty file":   {func(r *AttachmentRequest) { r.Size = 0 }, "size"},
		"negative":     {func(r *AttachmentRequest) { r.Size = -1 }, "size"},
		"svg":          {func(r *AttachmentRequest) { r.ContentType = "image/svg+xml" }, "contentType"},
		"case":         {func(r *AttachmentRequest) { r.ContentType = "IMAGE/PNG" }, "contentType"},
		"parameters":   {func(r *AttachmentRequest) { r.ContentType = "image/png; charset=x" }, "contentType"},
		"no type":      {func(r *AttachmentRequest) { r.ContentType = "" }, "contentType"},
		"no username":  {func(r *AttachmentRequest) { r.Username = "" }, "username"},
		"no workspace": {func(r *AttachmentRequest) { r.Workspace = "" }, "workspace"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ok
			tc.change(&r)
			err := r.Validate()
			if got := fieldOf(err); got != tc.field || (tc.field == "") != (err == nil) {
				t.Fatalf("error %v (field %q), want field %q", err, got, tc.field)
			}
		})
	}
}

func TestFeedbackAttachmentIDs(t *testing.T) {
	id := func(c string) string { return strings.Repeat(c, 32) }
	for name, tc := range map[string]struct {
		ids   []string
		field string
	}{
		"none":          {nil, ""},
		"three":         {[]string{id("a"), id("b"), id("c")}, ""},
		"four":          {[]string{id("a"), id("b"), id("c"), id("d")}, "attachments"},
		"twice":         {[]string{id("a"), id("a")}, "attachments[1]"},
		"upper case":    {[]string{id("A")}, "attachments[0]"},
		"short":         {[]string{id("a")[1:]}, "attachments[0]"},
		"path":          {[]string{id("a"), "../" + id("b")[3:]}, "attachments[1]"},
		"another alpha": {[]string{id("g")}, "attachments[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			r := FeedbackRequest{Workspace: "demo", Username: "ada@example.com", Text: "hi", Attachments: tc.ids}
			err := r.Validate()
			if got := fieldOf(err); got != tc.field || (tc.field == "") != (err == nil) {
				t.Fatalf("error %v (field %q), want field %q", err, got, tc.field)
			}
		})
	}
}
