package analytics

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// Bar draws n of max as a bar of at most width block characters, for the
// CLI's tables.
func Bar(n, max int64, width int) string {
	if max <= 0 || n <= 0 {
		return ""
	}
	w := int(float64(n) / float64(max) * float64(width))
	if w == 0 {
		w = 1
	}
	return strings.Repeat("█", w)
}

// WriteReport writes one self-contained HTML page (inline CSS and SVG, no
// script, nothing fetched) with a section per content item: its totals, a
// funnel for a tour's steps, bars for checklist items and survey answers,
// and a line per action over the days.
func WriteReport(w io.Writer, workspace string, reports []*waymark.ContentAnalytics) error {
	var sections []template.HTML
	for _, r := range reports {
		sections = append(sections, section(r))
	}
	return reportPage.Execute(w, map[string]any{"Workspace": workspace, "Sections": sections})
}

var reportPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waymark analytics: {{.Workspace}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2433;background:#f6f7fb}
h1{font-size:22px;margin:0 0 4px} .sub{color:#667;margin:0 0 20px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0001;padding:16px 20px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px} h2 small{color:#889;font-weight:400}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 12px}
.total{background:#eef1f8;border-radius:8px;padding:6px 12px} .total b{display:block;font-size:20px}
.charts{display:flex;flex-wrap:wrap;gap:18px} .chart h3{font-size:13px;color:#556;margin:0 0 4px}
svg text{font:11px system-ui,sans-serif;fill:#334}
</style></head><body>
<h1>Content analytics</h1>
<p class="sub">Workspace {{.Workspace}} · distinct users per action, exact; days in UTC</p>
{{range .Sections}}{{.}}{{end}}
</body></html>
`))

var palette = []string{"#3b6ef5", "#17a673", "#f59f0b", "#e5484d", "#8e4ec6", "#0ea5b7", "#b45309", "#64748b", "#db2777"}

func section(r *waymark.ContentAnalytics) template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<section data-content="%s" data-id="%s"><h2>%s <small>%s · %s to %s</small></h2><div class="totals">`,
		esc(r.Content), esc(r.ContentID), esc(r.ContentID), esc(r.Content), esc(r.From), esc(r.To))
	actions := waymark.ActionsOf(waymark.Kind(r.Content))
	for _, a := range actions {
		fmt.Fprintf(&b, `<div class="total" data-action="%s"><b>%d</b>%s</div>`, esc(a), r.Totals[a], esc(a))
	}
	if r.Displays != nil {
		fmt.Fprintf(&b, `<div class="total" data-action="displays"><b>%d</b>displays</div>`, *r.Displays)
	}
	if r.NPS != nil {
		fmt.Fprintf(&b, `<div class="total" data-action="nps"><b>%d</b>NPS</div>`, *r.NPS)
	}
	b.WriteString(`</div><div class="charts">`)
	if len(r.Steps) > 0 {
		b.WriteString(barChart("Funnel: users reaching each step", FunnelOrder(r.Steps), r.Steps, r.Totals["started"]))
	}
	if len(r.Items) > 0 {
		b.WriteString(barChart("Users completing each item", SortedKeys(r.Items), r.Items, 0))
	}
	if len(r.Answers) > 0 {
		b.WriteString(barChart("Answers (each user's latest)", SortedKeys(r.Answers), r.Answers, 0))
	}
	b.WriteString(dailyLines(r, actions))
	b.WriteString(`</div></section>`)
	return template.HTML(b.String())
}

// FunnelOrder orders steps from the most users to the fewest: with no step
// order known to the server, that is the funnel's order.
func FunnelOrder(steps map[string]int64) []string {
	keys := SortedKeys(steps)
	sort.SliceStable(keys, func(i, j int) bool { return steps[keys[i]] > steps[keys[j]] })
	return keys
}

// SortedKeys are a count map's keys in order.
func SortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// barChart draws horizontal bars; base, when positive, is the 100 % the
// percentages refer to (a funnel's starters).
func barChart(title string, keys []string, values map[string]int64, base int64) string {
	max := base
	for _, k := range keys {
		max = maxInt(max, values[k])
	}
	const width, row, label = 440, 24, 130
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="chart"><h3>%s</h3><svg width="%d" height="%d" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), width, row*len(keys)+4, template.HTMLEscapeString(title))
	for i, k := range keys {
		n := values[k]
		w := 0.0
		if max > 0 {
			w = float64(n) / float64(max) * float64(width-label-70)
		}
		y := i * row
		pct := ""
		if base > 0 {
			pct = fmt.Sprintf(" (%d%%)", n*100/base)
		}
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text><rect x="%d" y="%d" width="%.1f" height="16" rx="3" fill="%s"/><text x="%.1f" y="%d" data-value="%s">%d%s</text>`,
			y+15, template.HTMLEscapeString(truncate(k, 20)), label, y+3, w, palette[i%len(palette)], float64(label)+w+6, y+15, template.HTMLEscapeString(k), n, pct)
	}
	b.WriteString(`</svg></div>`)
	return b.String()
}

// dailyLines draws one line per action over the report's days.
func dailyLines(r *waymark.ContentAnalytics, actions []string) string {
	if len(r.Days) == 0 {
		return ""
	}
	const width, height, left, bottom, top = 900, 200, 36, 22, 8
	var max int64 = 1
	for _, d := range r.Days {
		for _, a := range actions {
			if n, _ := d[a].(int64); n > max {
				max = n
			}
		}
	}
	x := func(i int) float64 {
		if len(r.Days) == 1 {
			return left
		}
		return left + float64(i)*float64(width-left-10)/float64(len(r.Days)-1)
	}
	y := func(n int64) float64 { return top + float64(height-top-bottom)*(1-float64(n)/float64(max)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="chart"><h3>Users per day</h3><svg width="%d" height="%d" role="img" aria-label="users per day">`, width, height+18)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ccd"/><text x="0" y="%.1f">%d</text><text x="0" y="%.1f">0</text>`,
		left, y(0), width-10, y(0), y(max)+4, max, y(0))
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">%s</text>`,
		left, height-4, r.From, width-10, height-4, r.To)
	for ai, a := range actions {
		var pts []string
		for i, d := range r.Days {
			n, _ := d[a].(int64)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(n)))
		}
		color := palette[ai%len(palette)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`,
			left+ai*130, height+6, color, left+ai*130+14, height+15, a)
	}
	b.WriteString(`</svg></div>`)
	return b.String()
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
