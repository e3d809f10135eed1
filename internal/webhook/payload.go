package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// EventFeedbackCreated is the type of a new-feedback delivery.
const EventFeedbackCreated = "feedback.created"

// Payload is the JSON body of a delivery (format json).
type Payload struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	CreatedAt string       `json:"createdAt"`
	Workspace string       `json:"workspace"`
	Data      FeedbackData `json:"data"`
}

// FeedbackData is the feedback a delivery carries.
type FeedbackData struct {
	ID          string               `json:"id"`
	Username    string               `json:"username"`
	Text        string               `json:"text"`
	Rating      *int                 `json:"rating"`
	Category    *string              `json:"category"`
	Environment *waymark.Environment `json:"environment"`
	Attachments []waymark.Attachment `json:"attachments"`
}

// Body renders a delivery's body. It depends only on the delivery and its
// feedback, so every attempt of one delivery sends the same bytes; the
// signature's timestamp is what changes.
func Body(format waymark.WebhookFormat, deliveryID, workspace string, fb *waymark.Feedback) ([]byte, error) {
	if format == waymark.WebhookSlack {
		return json.Marshal(map[string]string{"text": slackText(workspace, fb)})
	}
	data := FeedbackData{
		ID: fb.ID, Username: fb.Username, Text: fb.Text, Rating: fb.Rating,
		Environment: fb.Environment, Attachments: fb.Attachments,
	}
	if data.Attachments == nil {
		data.Attachments = []waymark.Attachment{}
	}
	if fb.Category != "" {
		data.Category = &fb.Category
	}
	return json.Marshal(Payload{ID: deliveryID, Type: EventFeedbackCreated, CreatedAt: waymark.FormatTime(fb.CreatedAt), Workspace: workspace, Data: data})
}

// slackText is the message of a Slack incoming webhook. Slack reads &, <
// and > as markup, so the user's text is escaped as its docs ask.
func slackText(workspace string, fb *waymark.Feedback) string {
	var b strings.Builder
	fmt.Fprintf(&b, "New feedback in %s from %s", slackEscape(workspace), slackEscape(fb.Username))
	var details []string
	if fb.Rating != nil {
		details = append(details, fmt.Sprintf("rating %d", *fb.Rating))
	}
	if fb.Category != "" {
		details = append(details, "category "+slackEscape(fb.Category))
	}
	if fb.Environment != nil && fb.Environment.URL != "" {
		details = append(details, "page "+slackEscape(fb.Environment.URL))
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	b.WriteString(":\n")
	for _, line := range strings.Split(fb.Text, "\n") {
		b.WriteString("> " + slackEscape(line) + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }
