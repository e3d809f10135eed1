package analytics

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

// sampleReports are the reports of a workspace with one item of each kind
// (the README's screenshot is taken of them).
func sampleReports() []*waymark.ContentAnalytics {
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	from := to.AddDate(0, 0, -13)
	var days []waymark.DayCounts
	for i := 0; i < 14; i++ {
		d := from.AddDate(0, 0, i)
		days = append(days, waymark.DayCounts{Date: d.Format(waymark.DateLayout), Counts: waymark.Counts{
			"started": int64(40 + 7*(i%5) + i), "finished": int64(22 + 5*(i%4) + i/2), "skipped": int64(6 + i%3)}})
	}
	tour := waymark.NewContentAnalytics(waymark.ContentKey{Kind: waymark.KindTour, ID: "welcome"},
		waymark.Counts{"started": 812, "finished": 455, "skipped": 121, "step:intro": 812, "step:menu": 701, "step:search": 588, "step:done": 455}, days, from, to)
	survey := waymark.NewContentAnalytics(waymark.ContentKey{Kind: waymark.KindSurvey, ID: "nps"},
		waymark.Counts{"displayed": 300, "answered": 180, "dismissed": 60, "answer:10": 50, "answer:9": 40, "answer:8": 30, "answer:7": 20, "answer:5": 25, "answer:2": 15}, nil, from, to)
	list := waymark.NewContentAnalytics(waymark.ContentKey{Kind: waymark.KindChecklist, ID: "setup"},
		waymark.Counts{"item_completed": 260, "completed": 140, "dismissed": 30, "item:profile": 250, "item:invite": 170, "item:connect": 150}, nil, from, to)
	return []*waymark.ContentAnalytics{tour, list, survey}
}

func TestReportShowsTheNumbers(t *testing.T) {
	var b strings.Builder
	if err := WriteReport(&b, "demo", sampleReports()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`data-action="started"><b>812</b>`, `data-value="search">588 (72%)`, `data-action="nps"><b>28</b>`, "<polyline", `data-value="profile">250`} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %s", want)
		}
	}
	for _, never := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(page, never) {
			t.Errorf("report is not self-contained: %s", never)
		}
	}
}

// TestReportRendersInChromium loads the page in headless Chromium, which
// prints the rendered DOM: the numbers are there and nothing failed. With
// WAYMARK_SCREENSHOT set it also writes the README's screenshot there.
func TestReportRendersInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is a prerequisite of the tests (README): ", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(f, "demo", sampleReports()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--user-data-dir=" + dir,
		"--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + file}
	var stderr strings.Builder
	cmd := exec.Command(chromium, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	// With --enable-logging=stderr every console message of the page is
	// logged as INFO:CONSOLE; the report has no script, so there must be none.
	if strings.Contains(stderr.String(), ":CONSOLE") {
		t.Fatalf("the page wrote to the console:\n%s", stderr.String())
	}
	if !strings.Contains(string(out), `<b>812</b>`) || !strings.Contains(string(out), "588 (72%)") {
		t.Fatalf("the rendered page lacks the numbers:\n%.500s", out)
	}
	if shot := os.Getenv("WAYMARK_SCREENSHOT"); shot != "" {
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--user-data-dir=" + dir,
			"--hide-scrollbars", "--window-size=1060,1250", "--screenshot=" + shot, "file://" + file}
		if out, err := exec.Command(chromium, args...).CombinedOutput(); err != nil {
			t.Fatalf("screenshot: %v %s", err, out)
		}
	}
}
