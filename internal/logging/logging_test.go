package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		wantErr       bool
		json          bool
	}{
		{"info", "", false, false},
		{"warn", "text", false, false},
		{"debug", "json", false, true},
		{"loud", "text", true, false},
		{"info", "xml", true, false},
	} {
		var buf bytes.Buffer
		l, err := New(&buf, tc.level, tc.format)
		if (err != nil) != tc.wantErr {
			t.Fatalf("New(%q, %q): err %v", tc.level, tc.format, err)
		}
		if err != nil {
			continue
		}
		l.Error("boom", "k", "v")
		StdLogger(l, slog.LevelError).Print("from net/http")
		S3(l).Print(gofakes3.LogErr, "from", "gofakes3")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines: %q", tc.format, len(lines), buf.String())
		}
		for _, line := range lines {
			var m map[string]any
			isJSON := json.Unmarshal([]byte(line), &m) == nil
			if isJSON != tc.json || !strings.Contains(line, "level=ERROR") && !tc.json {
				t.Errorf("%s: line %q", tc.format, line)
			}
			if tc.json && m["level"] != "ERROR" {
				t.Errorf("json line %q", line)
			}
		}
	}
}

func TestS3LevelsFilter(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(&buf, "info", "text")
	S3(l).Print(gofakes3.LogInfo, "GET /bucket")
	if buf.Len() != 0 {
		t.Fatalf("per-request S3 line logged at info: %q", buf.String())
	}
	S3(l).Print(gofakes3.LogWarn, "odd")
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "component=s3") {
		t.Fatalf("warn line %q", buf.String())
	}
}
