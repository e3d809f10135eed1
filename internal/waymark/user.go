package waymark

import (
	"time"
)

// Profile is the user information object besides the username. A nil field
// is not stored.
type Profile struct {
	Email     *string
	Firstname *string
	Lastname  *string
	Role      *string
	SignUpAt  *string
	Props     map[string]any
}

// User is a stored user, with sealed values opened.
type User struct {
	Key         string
	Username    string
	Profile     Profile
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	Version     int64
	// ExpiresAt is when the workspace's retention lets the user go (unix
	// seconds, 0 = kept).
	ExpiresAt int64
	// InputDigest is the Workspace.IdentifyDigest of the last identify
	// input applied to the profile.
	InputDigest string
	// Folded are the request ids of the inputs that identifies which lost
	// the race for the user recorded beside it, most recent last; the
	// profile has them applied. Kept for a while so that a late repeat of
	// one of those records is recognised.
	Folded []string
	// Groups are the keys (Workspace.GroupKey) of the groups the user
	// belongs to.
	Groups []string
}

// Expired reports whether the user outlived the workspace's retention.
func (u *User) Expired(now time.Time) bool {
	return u.ExpiresAt > 0 && u.ExpiresAt < now.Unix()
}

// Merge applies an identify's user object to the stored profile: standard
// fields given replace the stored ones (null clears them); props merge by
// MergeProps under the workspace's allow-list of user prop keys.
func (p Profile) Merge(in UserInput, allowed AllowList) (Profile, error) {
	out := p
	apply := func(dst **string, n Nullable) {
		switch {
		case !n.Set:
		case n.Null:
			*dst = nil
		default:
			v := n.Value
			*dst = &v
		}
	}
	apply(&out.Email, in.Email)
	apply(&out.Firstname, in.Firstname)
	apply(&out.Lastname, in.Lastname)
	apply(&out.Role, in.Role)
	apply(&out.SignUpAt, in.SignUpAt)
	props, err := MergeProps("user.props", p.Props, in.Props, allowed)
	if err != nil {
		return Profile{}, err
	}
	out.Props = props
	return out, nil
}

// Feedback is one feedback message, with sealed values opened.
type Feedback struct {
	ID          string
	UserKey     string
	Username    string
	Text        string
	Rating      *int
	Category    string
	Environment *Environment
	// Attachments are the files attached to the message, in the order given.
	Attachments []Attachment
	CreatedAt   time.Time
	ExpiresAt   int64
}
