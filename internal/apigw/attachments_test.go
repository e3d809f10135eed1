package apigw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// presignedUpload is the answer of POST /v1/feedback/attachments.
type presignedUpload struct {
	ID     string `json:"id"`
	Upload struct {
		Method string            `json:"method"`
		URL    string            `json:"url"`
		Fields map[string]string `json:"fields"`
	} `json:"upload"`
	ExpiresAt string `json:"expiresAt"`
}

// requestUpload asks the attachments route for an upload.
func requestUpload(t *testing.T, hs map[string]apigw.Handler, ws *waymark.Workspace, user, contentType string, size int) (response, presignedUpload) {
	t.Helper()
	r := invokeRoute(t, hs, serverRoute(t, "POST /v1/feedback/attachments"), mustJSON(map[string]any{
		"workspace": ws.Code, "username": user, "contentType": contentType, "size": size}), nil, nil)
	var up presignedUpload
	if r.Status == 201 {
		b, _ := json.Marshal(r.Body)
		if err := json.Unmarshal(b, &up); err != nil {
			t.Fatal(err)
		}
	}
	return r, up
}

// postFile uploads a file the way a browser form does: the signed fields,
// then the file. typeField, when set, replaces the Content-Type field.
func postFile(t *testing.T, up presignedUpload, file []byte, typeField string) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range up.Upload.Fields {
		if k == "Content-Type" && typeField != "" {
			v = typeField
		}
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	part, err := w.CreateFormFile("file", "screenshot")
	if err != nil {
		t.Fatal(err)
	}
	part.Write(file)
	w.Close()
	resp, err := http.Post(up.Upload.URL, w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("upload: %d %s", resp.StatusCode, msg)
	}
}

// png is a file of n bytes that starts like a PNG image.
func png(n int) []byte {
	b := bytes.Repeat([]byte{0x42}, n)
	copy(b, "\x89PNG\r\n\x1a\n")
	return b
}

func feedbackWith(t *testing.T, hs map[string]apigw.Handler, ws *waymark.Workspace, user string, ids ...string) response {
	t.Helper()
	text := "feedback with a screenshot " + waymark.NewID()
	remember(text)
	return invokeWith(t, hs, "feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": text, "attachments": ids}), nil)
}

// objectsOf lists the keys of a user's objects in the local S3 engine.
func objectsOf(t *testing.T, ws *waymark.Workspace, user string) []string {
	t.Helper()
	var keys []string
	for _, prefix := range []string{objects.UploadsPrefix, objects.AttachmentsPrefix} {
		got, err := bucket(t).List(context.Background(), prefix+objects.UserPrefix(ws.UserKey(user)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, got...)
	}
	return keys
}

func bucket(t *testing.T) *objects.Bucket {
	t.Helper()
	client, err := stack.Config().S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return objects.New(client, localstack.AttachmentsBucket)
}

// An attachment end to end: the upload the route presigns takes the file,
// a feedback references it, the listing and the export give a download
// that returns the same bytes, and the erasure of the user deletes the
// objects (listed from the S3 engine).
func TestAttachmentUploadFeedbackDownloadErase(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	file := png(2048)
	r, up := requestUpload(t, handlers, ws, user, "image/png", len(file))
	if r.Status != 201 || up.Upload.Method != "POST" || up.ID == "" {
		t.Fatalf("upload request: %d %v", r.Status, r.Body)
	}
	if strings.Contains(mustJSON(r.Body), ws.UserKey(user)) || strings.Contains(mustJSON(r.Body), user) {
		t.Errorf("the upload names the user: %v", r.Body)
	}
	expires, err := time.Parse(time.RFC3339, up.ExpiresAt)
	if err != nil || time.Until(expires) > waymark.UploadValidity || time.Until(expires) < waymark.UploadValidity-time.Minute {
		t.Errorf("expiresAt %q, want about %v from now", up.ExpiresAt, waymark.UploadValidity)
	}
	postFile(t, up, file, "")

	if r := feedbackWith(t, handlers, ws, user, up.ID); r.Status != 201 {
		t.Fatalf("feedback: %d %v", r.Status, r.Body)
	}
	if got := objectsOf(t, ws, user); len(got) != 1 || !strings.HasPrefix(got[0], objects.AttachmentsPrefix) {
		t.Errorf("objects after the feedback: %v, want the one attachment (the upload released)", got)
	}

	list := server(t, "GET /v1/server/feedback", key, "", nil)
	items, _ := list.Body["items"].([]any)
	if list.Status != 200 || len(items) != 1 {
		t.Fatalf("listing: %d %v", list.Status, list.Body)
	}
	atts, _ := items[0].(map[string]any)["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("listing attachments: %v", items[0])
	}
	att := atts[0].(map[string]any)
	if att["id"] != up.ID || att["contentType"] != "image/png" || att["size"] != float64(len(file)) {
		t.Errorf("listed attachment %v", att)
	}
	resp, err := http.Get(att["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, file) {
		t.Errorf("download: %d, %d bytes, want the %d uploaded", resp.StatusCode, len(got), len(file))
	}

	export := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": user}), nil)
	fb, _ := export.Body["feedback"].([]any)
	if len(fb) != 1 || len(fb[0].(map[string]any)["attachments"].([]any)) != 1 {
		t.Errorf("export lists no attachment: %v", export.Body)
	}

	// A second upload that no feedback references is erased too.
	_, spare := requestUpload(t, handlers, ws, user, "image/webp", 10)
	postFile(t, spare, png(10), "")
	erase := server(t, "POST /v1/server/users/delete", key, mustJSON(map[string]any{"usernames": []string{user}}), nil)
	if erase.Status != 200 || erase.Body["attachments"] != float64(2) {
		t.Errorf("erase: %d %v, want 2 attachments deleted", erase.Status, erase.Body)
	}
	if left := objectsOf(t, ws, user); len(left) != 0 {
		t.Errorf("objects left after erasure: %v", left)
	}
}

// The route refuses a type or size outside the limits, and the upload it
// signs admits exactly the declared size and type: S3 enforces the POST
// policy's conditions (the local engine does not, see the next test), so
// they are read back from the signed policy here.
func TestAttachmentLimitsAreSigned(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	for name, tc := range map[string]struct {
		contentType string
		size        int
		field       string
	}{
		"wrong type":   {"image/gif", 10, "contentType"},
		"html":         {"text/html", 10, "contentType"},
		"too large":    {"image/png", waymark.MaxAttachmentBytes + 1, "size"},
		"empty":        {"image/png", 0, "size"},
		"largest kept": {"image/jpeg", waymark.MaxAttachmentBytes, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r, up := requestUpload(t, handlers, ws, user, tc.contentType, tc.size)
			if tc.field != "" {
				if r.Status != 400 || r.errorField() != tc.field {
					t.Fatalf("%d %v, want 400 naming %s", r.Status, r.Body, tc.field)
				}
				return
			}
			if r.Status != 201 {
				t.Fatalf("%d %v", r.Status, r.Body)
			}
			raw, err := base64.StdEncoding.DecodeString(up.Upload.Fields["policy"])
			if err != nil {
				t.Fatalf("policy: %v", err)
			}
			var policy struct {
				Expiration string `json:"expiration"`
				Conditions []any  `json:"conditions"`
			}
			if err := json.Unmarshal(raw, &policy); err != nil {
				t.Fatal(err)
			}
			conds := mustJSON(policy.Conditions)
			for _, want := range []string{
				fmt.Sprintf(`["content-length-range",%d,%d]`, tc.size, tc.size),
				fmt.Sprintf(`{"Content-Type":%q}`, tc.contentType),
				fmt.Sprintf(`{"key":%q}`, objects.UploadKey(ws.UserKey(user), up.ID)),
			} {
				if !strings.Contains(conds, want) {
					t.Errorf("policy conditions %s lack %s", conds, want)
				}
			}
			exp, err := time.Parse(time.RFC3339, policy.Expiration)
			if err != nil || time.Until(exp) > waymark.UploadValidity {
				t.Errorf("policy expiration %q, want within %v", policy.Expiration, waymark.UploadValidity)
			}
		})
	}
}

// A feedback refuses, naming the attachment, ids that are not this user's
// uploads, uploads older than a day, and files that break the limits (here
// where the local engine let them in; in AWS the signature stops them
// first).
func TestFeedbackRefusesAttachments(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	owner, other := uniqueUser(t), uniqueUser(t)
	_, up := requestUpload(t, handlers, ws, owner, "image/png", 100)
	postFile(t, up, png(100), "")

	t.Run("someone else's id", func(t *testing.T) {
		r := feedbackWith(t, handlers, ws, other, up.ID)
		if r.Status != 400 || r.errorField() != "attachments[0]" {
			t.Fatalf("%d %v, want 400 naming attachments[0]", r.Status, r.Body)
		}
	})
	t.Run("never uploaded", func(t *testing.T) {
		_, unused := requestUpload(t, handlers, ws, owner, "image/png", 100)
		r := feedbackWith(t, handlers, ws, owner, up.ID, unused.ID)
		if r.Status != 400 || r.errorField() != "attachments[1]" {
			t.Fatalf("%d %v, want 400 naming attachments[1]", r.Status, r.Body)
		}
	})
	t.Run("not an id", func(t *testing.T) {
		r := feedbackWith(t, handlers, ws, owner, "../uploads/x")
		if r.Status != 400 || r.errorField() != "attachments[0]" {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	})
	t.Run("more than 3", func(t *testing.T) {
		ids := []string{waymark.NewID(), waymark.NewID(), waymark.NewID(), waymark.NewID()}
		r := feedbackWith(t, handlers, ws, owner, ids...)
		if r.Status != 400 || r.errorField() != "attachments" {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	})
	t.Run("expired upload", func(t *testing.T) {
		later := withClock(t, func() time.Time { return time.Now().Add(waymark.UnreferencedUploadLifetime + time.Hour) })
		r := feedbackWith(t, later, ws, owner, up.ID)
		if r.Status != 400 || r.errorField() != "attachments[0]" || !strings.Contains(r.Body["error"].(map[string]any)["message"].(string), "expired") {
			t.Fatalf("%d %v, want 400: expired", r.Status, r.Body)
		}
	})
	t.Run("larger than declared", func(t *testing.T) {
		_, big := requestUpload(t, handlers, ws, owner, "image/png", 100)
		postFile(t, big, png(waymark.MaxAttachmentBytes+1), "")
		r := feedbackWith(t, handlers, ws, owner, big.ID)
		if r.Status != 400 || r.errorField() != "attachments[0]" {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	})
	t.Run("other type than declared", func(t *testing.T) {
		_, html := requestUpload(t, handlers, ws, owner, "image/png", 100)
		postFile(t, html, png(100), "text/html")
		r := feedbackWith(t, handlers, ws, owner, html.ID)
		if r.Status != 400 || r.errorField() != "attachments[0]" {
			t.Fatalf("%d %v", r.Status, r.Body)
		}
	})
	// The upload is still there and still the owner's: refusals consumed
	// nothing.
	if r := feedbackWith(t, handlers, ws, owner, up.ID); r.Status != 201 {
		t.Fatalf("owner's feedback: %d %v", r.Status, r.Body)
	}
	// A feedback sent again (the snippet's answer was lost) finds the
	// attachment already moved out of the uploads, and is stored.
	if r := feedbackWith(t, handlers, ws, owner, up.ID); r.Status != 201 {
		t.Fatalf("the same attachment again: %d %v", r.Status, r.Body)
	}
	// Another user still cannot name it once attached.
	if r := feedbackWith(t, handlers, ws, other, up.ID); r.Status != 400 || r.errorField() != "attachments[0]" {
		t.Fatalf("another user's attached id: %d %v", r.Status, r.Body)
	}
}

// withClock wires the handlers of a Waymark whose clock is now, on the
// suite's local stack.
func withClock(t *testing.T, now func() time.Time) map[string]apigw.Handler {
	t.Helper()
	cfg := recordedConfig()
	s3Client, err := cfg.S3(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(graph.Store, service.Options{Now: now, Attachments: objects.New(s3Client, cfg.AttachmentsBucket)})
	return apigw.New(svc, wiring.Logger(&logBuffer, "debug")).Handlers()
}

// A feedback with the most attachments it may carry moves every one of
// them out of the uploads: each is then an attachment of the user, and no
// upload is left for the lifecycle to remove.
func TestFeedbackWithEveryAttachmentKeepsThemAll(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	var ids, want []string
	for range waymark.MaxAttachmentsPerEntry {
		_, up := requestUpload(t, handlers, ws, user, "image/png", 64)
		postFile(t, up, png(64), "")
		ids = append(ids, up.ID)
		want = append(want, objects.AttachmentKey(ws.UserKey(user), up.ID))
	}
	if r := feedbackWith(t, handlers, ws, user, ids...); r.Status != 201 {
		t.Fatalf("feedback: %d %v", r.Status, r.Body)
	}
	got := objectsOf(t, ws, user)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("objects after the feedback:\n got %v\nwant %v", got, want)
	}
}

// An upload may be attached until UnreferencedUploadLifetime after it was
// stored, that second included; one second later it is refused.
func TestUploadLifetimeAtItsEdge(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	uploadedAt := func() (string, time.Time) {
		t.Helper()
		_, up := requestUpload(t, handlers, ws, user, "image/png", 64)
		postFile(t, up, png(64), "")
		obj, err := bucket(t).Head(context.Background(), objects.UploadKey(ws.UserKey(user), up.ID))
		if err != nil {
			t.Fatal(err)
		}
		return up.ID, obj.LastModified
	}
	id, at := uploadedAt()
	last := withClock(t, func() time.Time { return at.Add(waymark.UnreferencedUploadLifetime) })
	if r := feedbackWith(t, last, ws, user, id); r.Status != 201 {
		t.Fatalf("at the end of the upload's lifetime: %d %v, want 201", r.Status, r.Body)
	}
	id, at = uploadedAt()
	after := withClock(t, func() time.Time { return at.Add(waymark.UnreferencedUploadLifetime + time.Second) })
	if r := feedbackWith(t, after, ws, user, id); r.Status != 400 || r.errorField() != "attachments[0]" {
		t.Fatalf("a second after the upload's lifetime: %d %v, want 400 on attachments[0]", r.Status, r.Body)
	}
}
