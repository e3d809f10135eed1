package waymark

import (
	"encoding/hex"
	"net/url"
	"strings"
)

// WebhookFormat is the body a workspace's webhook receives.
type WebhookFormat string

const (
	// WebhookJSON is the signed delivery document (docs/webhooks.md).
	WebhookJSON WebhookFormat = "json"
	// WebhookSlack is {"text": ...} for a Slack incoming webhook.
	WebhookSlack WebhookFormat = "slack"
)

// Webhook is where a workspace's new feedback is delivered.
type Webhook struct {
	URL    string
	Format WebhookFormat
	// Secret signs every delivery; it is shared with the receiver, which
	// checks the signature with it. Shown once, when set or rotated.
	Secret string
}

// maxWebhookURL bounds the stored URL; receivers' URLs are short.
const maxWebhookURL = 2048

// webhookSecretPrefix marks the signing secret so that it is recognised
// (and caught by secret scanners) wherever it is pasted.
const webhookSecretPrefix = "whsec_"

// ValidateWebhookURL checks a receiver URL as it is saved: absolute, http
// or https, a host, no user info. Whether plain http and which addresses
// are allowed is decided at delivery time (internal/webhook), where the
// resolved address is known.
func ValidateWebhookURL(raw string) error {
	if len(raw) > maxWebhookURL {
		return Invalid("webhookUrl", "longer than %d bytes", maxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" {
		return Invalid("webhookUrl", "must be an absolute https:// URL")
	}
	if u.User != nil {
		return Invalid("webhookUrl", "must not carry a user name or password")
	}
	return nil
}

// ParseWebhookFormat reads the format as the CLI spells it; empty is json.
func ParseWebhookFormat(s string) (WebhookFormat, error) {
	switch f := WebhookFormat(strings.ToLower(s)); f {
	case "":
		return WebhookJSON, nil
	case WebhookJSON, WebhookSlack:
		return f, nil
	}
	return "", Invalid("webhookFormat", "must be %s or %s", WebhookJSON, WebhookSlack)
}

// SetWebhook points the workspace's feedback deliveries at url with a new
// signing secret, which it returns (the only time it is shown). An empty
// url removes the webhook and returns "".
func (w *Workspace) SetWebhook(rawURL string, format WebhookFormat) (string, error) {
	if rawURL == "" {
		w.Webhook = nil
		return "", nil
	}
	if err := ValidateWebhookURL(rawURL); err != nil {
		return "", err
	}
	if format == "" {
		format = WebhookJSON
	}
	if _, err := ParseWebhookFormat(string(format)); err != nil {
		return "", err
	}
	w.Webhook = &Webhook{URL: rawURL, Format: format, Secret: newWebhookSecret()}
	return w.Webhook.Secret, nil
}

// RotateWebhookSecret replaces the signing secret; a workspace without a
// webhook has none to rotate.
func (w *Workspace) RotateWebhookSecret() (string, error) {
	if w.Webhook == nil {
		return "", Invalid("webhookUrl", "this workspace has no webhook")
	}
	w.Webhook.Secret = newWebhookSecret()
	return w.Webhook.Secret, nil
}

func newWebhookSecret() string { return webhookSecretPrefix + hex.EncodeToString(randomBytes(32)) }
