package waymark

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// MaxGroupsPerUser bounds the groups one user belongs to (user.groups).
const MaxGroupsPerUser = 10

// MaxGroupsPerCall bounds the group ids of one group erasure call.
const MaxGroupsPerCall = 100

// GroupInput is a group (a customer's account, for B2B apps) as identify
// and the server's group identify take it.
type GroupInput struct {
	ID    string         `json:"id"`
	Props map[string]any `json:"props"`
}

// Group is a stored group, with sealed values opened.
type Group struct {
	// Key is the workspace's keyed hash of the id (Workspace.GroupKey).
	Key       string
	ID        string
	Props     map[string]any
	Version   int64
	ExpiresAt int64
}

// Expired reports whether the group outlived the workspace's retention.
func (g *Group) Expired(now time.Time) bool {
	return g.ExpiresAt > 0 && g.ExpiresAt < now.Unix()
}

// Memberships is the groups an identify's user object names, and whether it
// names any: user.group stands for a one-element user.groups; neither
// given keeps the stored memberships, an empty user.groups clears them.
func (in UserInput) Memberships() ([]GroupInput, bool) {
	switch {
	case in.Group != nil:
		return []GroupInput{*in.Group}, true
	case in.Groups != nil:
		return *in.Groups, true
	}
	return nil, false
}

// validGroups checks user.groups / user.group: not both, at most
// MaxGroupsPerUser, each id 1–128 printable characters and listed once,
// props within the limits of user props.
func (in UserInput) validGroups() error {
	if in.Group != nil && in.Groups != nil {
		return Invalid("user.group", "give user.group or user.groups, not both")
	}
	if in.Group != nil {
		return ValidateGroup("user.group", *in.Group)
	}
	if in.Groups == nil {
		return nil
	}
	groups := *in.Groups
	if len(groups) > MaxGroupsPerUser {
		return Invalid("user.groups", "more than %d groups", MaxGroupsPerUser)
	}
	seen := make(map[string]bool, len(groups))
	for i, g := range groups {
		field := fmt.Sprintf("user.groups[%d]", i)
		if err := ValidateGroup(field, g); err != nil {
			return err
		}
		if seen[g.ID] {
			return Invalid(field+".id", "group listed twice")
		}
		seen[g.ID] = true
	}
	return nil
}

// ValidateGroupID checks a group id: 1–128 printable characters.
func ValidateGroupID(field, id string) error { return validID(field, id) }

// ValidateGroup checks one group: its id (1–128 printable characters) and
// its props (the limits of user props).
func ValidateGroup(field string, g GroupInput) error {
	if err := ValidateGroupID(field+".id", g.ID); err != nil {
		return err
	}
	return ValidateProps(field+".props", g.Props)
}

// canonicalGroups encodes the groups of an input for its digest (see
// canonical): nothing when the input names none, so that the digest of an
// input without groups is what it was before groups existed; otherwise the
// groups sorted by id with their props.
func (in UserInput) canonicalGroups() []byte {
	groups, given := in.Memberships()
	if !given {
		return nil
	}
	sorted := append([]GroupInput(nil), groups...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	b := []byte(",groups")
	for _, g := range sorted {
		b = append(b, ',')
		b = strconv.AppendQuote(b, g.ID)
		// Props were decoded from JSON and validated: they encode again.
		props, _ := json.Marshal(g.Props)
		b = append(b, props...)
	}
	return b
}
