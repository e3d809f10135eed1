package service

import (
	"context"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// AnalyticsQuery is the query string of GET /v1/server/analytics.
type AnalyticsQuery struct {
	Content, ContentID, From, To string
}

// AnalyticsList is the answer without a contentId: every content item (of
// one kind, when named) with its all-time totals.
type AnalyticsList struct {
	Contents []waymark.ContentTotals `json:"contents"`
}

// DefaultAnalyticsDays is the range of a report that names no from.
const DefaultAnalyticsDays = 30

// Analytics answers GET /v1/server/analytics for a server key.
func (s *Service) Analytics(ctx context.Context, call Call, q AnalyticsQuery) (any, error) {
	ws, err := s.authenticate(ctx, call.Authorization)
	if err != nil {
		return nil, err
	}
	return s.AnalyticsOf(ctx, ws, q)
}

// AnalyticsOf answers an analytics query for an authorized caller (the
// server API, or the operator CLI): one content item's report when the query
// names its id, else the list.
func (s *Service) AnalyticsOf(ctx context.Context, ws *waymark.Workspace, q AnalyticsQuery) (any, error) {
	if q.Content != "" && !waymark.ValidKind(q.Content) {
		return nil, waymark.Invalid("content", "must be tour, hint, announcement, checklist or survey")
	}
	if q.ContentID == "" {
		if q.From != "" || q.To != "" {
			return nil, waymark.Invalid("contentId", "required with from and to")
		}
		counters, err := s.store.WorkspaceCounters(ctx, ws.Code)
		if err != nil {
			return nil, err
		}
		list := AnalyticsList{Contents: []waymark.ContentTotals{}}
		for key, c := range counters {
			if q.Content == "" || string(key.Kind) == q.Content {
				list.Contents = append(list.Contents, waymark.NewContentTotals(key, c))
			}
		}
		waymark.SortContentTotals(list.Contents)
		return list, nil
	}
	if q.Content == "" {
		return nil, waymark.Invalid("content", "required with contentId")
	}
	if err := waymark.ValidateContentID("contentId", q.ContentID); err != nil {
		return nil, err
	}
	from, to, err := analyticsRange(q.From, q.To, s.opts.Now())
	if err != nil {
		return nil, err
	}
	key := waymark.ContentKey{Kind: waymark.Kind(q.Content), ID: q.ContentID}
	totals, days, err := s.store.ContentCounters(ctx, ws.Code, key, from.Format(waymark.DateLayout), to.Format(waymark.DateLayout))
	if err != nil {
		return nil, err
	}
	return waymark.NewContentAnalytics(key, totals, days, from, to), nil
}

// analyticsRange parses from and to (UTC days): to defaults to today, from
// to DefaultAnalyticsDays days before to; at most MaxAnalyticsRange days.
func analyticsRange(fromS, toS string, now time.Time) (time.Time, time.Time, error) {
	parse := func(field, s string, def time.Time) (time.Time, error) {
		if s == "" {
			return def, nil
		}
		t, err := time.Parse(waymark.DateLayout, s)
		if err != nil {
			return time.Time{}, waymark.Invalid(field, "must be a date YYYY-MM-DD")
		}
		return t, nil
	}
	today := now.UTC().Truncate(24 * time.Hour)
	to, err := parse("to", toS, today)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	from, err := parse("from", fromS, to.AddDate(0, 0, 1-DefaultAnalyticsDays))
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if from.After(to) {
		return time.Time{}, time.Time{}, waymark.Invalid("from", "after to")
	}
	if to.Sub(from) >= waymark.MaxAnalyticsRange*24*time.Hour {
		return time.Time{}, time.Time{}, waymark.Invalid("from", "more than %d days before to", waymark.MaxAnalyticsRange)
	}
	return from, to, nil
}
