package waymark

import "time"

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
}

// Expired reports whether the user outlived the workspace's retention.
func (u *User) Expired(now time.Time) bool {
	return u.ExpiresAt > 0 && u.ExpiresAt < now.Unix()
}

// Merge applies an identify's user object to the stored profile: standard
// fields given replace the stored ones (null clears them); props merge key by
// key, a null value deleting that key. It refuses a merge that would leave
// more than MaxProps props.
func (p Profile) Merge(in UserInput) (Profile, error) {
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
	if len(in.Props) > 0 {
		merged := make(map[string]any, len(p.Props)+len(in.Props))
		for k, v := range p.Props {
			merged[k] = v
		}
		for k, v := range in.Props {
			if v == nil {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		if len(merged) > MaxProps {
			return Profile{}, Invalid("user.props", "more than %d props once merged with the stored ones", MaxProps)
		}
		out.Props = merged
	}
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
