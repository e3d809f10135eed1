package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// Groups: a customer's accounts (Product Fruits' group in the user
// information object). A group item holds the group's id and props; the
// user item holds the keys of the user's groups, and each group's
// partition a membership item per member (dynamo.PutUserMemberships).

// pendingGroup is a group an identify names, read and merged before
// anything is written, so that a merge refused (too many props) answers
// 400 with nothing written.
type pendingGroup struct {
	group *waymark.Group
	props map[string]any
	field string
	// unchanged says the stored group already is what the merge gives and
	// its expiry is current: nothing to write.
	unchanged bool
}

// prepareGroups reads the groups an identify names (one round trip) and
// merges the props given into them.
func (s *Service) prepareGroups(ctx context.Context, ws *waymark.Workspace, inputs []waymark.GroupInput, field string, now time.Time) ([]*pendingGroup, error) {
	keys := make([]string, len(inputs))
	for i, in := range inputs {
		keys[i] = ws.GroupKey(in.ID)
	}
	stored, err := s.store.GetGroups(ctx, ws, keys)
	if err != nil {
		return nil, err
	}
	out := make([]*pendingGroup, len(inputs))
	for i, in := range inputs {
		f := field
		if field == "user.groups" {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		p := &pendingGroup{props: in.Props, field: f + ".props"}
		g, found := stored[keys[i]]
		if !found || g.Expired(now) {
			version := int64(0)
			if found {
				version = g.Version
			}
			g = &waymark.Group{Key: keys[i], Version: version}
		}
		g.ID = in.ID
		merged, err := waymark.MergeProps(p.field, g.Props, in.Props, ws.AllowedGroupProps)
		if err != nil {
			return nil, err
		}
		p.unchanged = found && sameJSON(merged, g.Props) && expiryFresh(g.ExpiresAt, ws.ExpiresAt(now))
		g.Props = merged
		p.group = g
		out[i] = p
	}
	return out, nil
}

// sameJSON says two props objects encode alike.
func sameJSON(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// expiryFresh says a stored expiry needs no refresh (at most a day stale).
func expiryFresh(stored, want int64) bool {
	if want == 0 || stored == 0 {
		return want == stored
	}
	return stored >= want-retentionSlack
}

// saveGroups writes the prepared groups side by side.
func (s *Service) saveGroups(ctx context.Context, call Call, ws *waymark.Workspace, groups []*pendingGroup, now time.Time) error {
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, p := range groups {
		if p.unchanged {
			continue
		}
		spawn(&wg, &errs[i], func() error { return s.saveGroup(ctx, call, ws, p, now) })
	}
	wg.Wait()
	return firstAppError(errs)
}

// saveGroup writes a merged group over the version it was read at; on a
// conflict it reads the group again and merges the call's props into it
// again, as identify does with a user.
func (s *Service) saveGroup(ctx context.Context, call Call, ws *waymark.Workspace, p *pendingGroup, now time.Time) error {
	g := p.group
	for attempt := 1; ; attempt++ {
		err := s.store.PutGroup(ctx, ws, g, call.RequestID, now)
		if err == nil || !errors.Is(err, waymark.ErrConflict) {
			return err
		}
		if mine, err := s.store.GroupWrittenBy(ctx, g.Key, call.RequestID); err != nil || mine {
			return err
		}
		if attempt >= s.opts.MaxAttempts {
			return waymark.ErrUnavailable("too much contention on this group")
		}
		backoff(ctx, attempt)
		stored, err := s.store.GetGroup(ctx, ws, g.Key)
		switch {
		case errors.Is(err, waymark.ErrNotFound):
			stored = &waymark.Group{Key: g.Key}
		case err != nil:
			return err
		case stored.Expired(now):
			stored = &waymark.Group{Key: g.Key, Version: stored.Version}
		}
		merged, err := waymark.MergeProps(p.field, stored.Props, p.props, ws.AllowedGroupProps)
		if err != nil {
			return err
		}
		stored.ID, stored.Props = g.ID, merged
		g = stored
	}
}

// GroupIdentifyRequest is the body of POST /v1/server/groups/identify.
type GroupIdentifyRequest struct {
	Group *waymark.GroupInput `json:"group"`
}

// GroupIdentifyResult is the answer to a group identify.
type GroupIdentifyResult struct {
	Group GroupRef `json:"group"`
}

// GroupRef names a group.
type GroupRef struct {
	ID string `json:"id"`
}

// IdentifyGroup creates or updates a group: its props merge like a
// user's.
func (s *Service) IdentifyGroup(ctx context.Context, call Call, req *GroupIdentifyRequest) (*GroupIdentifyResult, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	if req.Group == nil {
		return nil, waymark.Invalid("group", "required")
	}
	if err := waymark.ValidateGroup("group", *req.Group); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	groups, err := s.prepareGroups(ctx, ws, []waymark.GroupInput{*req.Group}, "group", now)
	if err != nil {
		return nil, err
	}
	if err := s.saveGroups(ctx, call, ws, groups, now); err != nil {
		return nil, err
	}
	return &GroupIdentifyResult{Group: GroupRef{ID: req.Group.ID}}, nil
}

// GroupExportRequest is the body of POST /v1/server/groups/export.
type GroupExportRequest struct {
	ID string `json:"id"`
}

// ExportedGroup is a group as stored, with its member count.
type ExportedGroup struct {
	ID      string         `json:"id"`
	Props   map[string]any `json:"props"`
	Members int            `json:"members"`
}

// GroupExport is everything stored about one group.
type GroupExport struct {
	Found bool           `json:"found"`
	Group *ExportedGroup `json:"group"`
}

// ExportGroup returns a group, opened, with the number of its members.
func (s *Service) ExportGroup(ctx context.Context, call Call, req *GroupExportRequest) (*GroupExport, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	if err := waymark.ValidateGroupID("id", req.ID); err != nil {
		return nil, err
	}
	key := ws.GroupKey(req.ID)
	g, err := s.store.GetGroup(ctx, ws, key)
	if errors.Is(err, waymark.ErrNotFound) {
		return &GroupExport{}, nil
	}
	if err != nil {
		return nil, err
	}
	if g.Expired(s.opts.Now()) {
		return &GroupExport{}, nil
	}
	members, err := s.store.CountMembers(ctx, key)
	if err != nil {
		return nil, err
	}
	props := g.Props
	if props == nil {
		props = map[string]any{}
	}
	return &GroupExport{Found: true, Group: &ExportedGroup{ID: g.ID, Props: props, Members: members}}, nil
}

// GroupEraseRequest is the body of POST /v1/server/groups/delete.
type GroupEraseRequest struct {
	IDs []string `json:"ids"`
}

// GroupEraseResult says what a group erasure removed.
type GroupEraseResult struct {
	// Groups is how many of the ids had anything stored.
	Groups int `json:"groups"`
	// Items is how many items were deleted: group items and memberships.
	Items int `json:"items"`
}

// EraseGroups deletes groups and every membership in them. Idempotent.
func (s *Service) EraseGroups(ctx context.Context, call Call, req *GroupEraseRequest) (*GroupEraseResult, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	if len(req.IDs) == 0 {
		return nil, waymark.Invalid("ids", "at least one group id is required")
	}
	if len(req.IDs) > waymark.MaxGroupsPerCall {
		return nil, waymark.Invalid("ids", "more than %d group ids", waymark.MaxGroupsPerCall)
	}
	for i, id := range req.IDs {
		if err := waymark.ValidateGroupID(fmt.Sprintf("ids[%d]", i), id); err != nil {
			return nil, err
		}
	}
	res := &GroupEraseResult{}
	for _, id := range req.IDs {
		n, err := s.store.EraseGroup(ctx, ws.GroupKey(id))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			res.Groups++
			res.Items += n
		}
	}
	return res, nil
}

// exportGroups lists a user's groups with their props, by id.
func (s *Service) exportGroups(ctx context.Context, ws *waymark.Workspace, keys []string, now time.Time) ([]UserGroup, error) {
	out := []UserGroup{}
	groups, err := s.store.GetGroups(ctx, ws, keys)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g.Expired(now) {
			continue
		}
		props := g.Props
		if props == nil {
			props = map[string]any{}
		}
		out = append(out, UserGroup{ID: g.ID, Props: props})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// UserGroup is one of a user's groups in the user's export.
type UserGroup struct {
	ID    string         `json:"id"`
	Props map[string]any `json:"props"`
}

// groupsField is the field an identify's groups came in, for errors.
func groupsField(in waymark.UserInput) string {
	if in.Group != nil {
		return "user.group"
	}
	return "user.groups"
}
