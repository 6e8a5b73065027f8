package builtin_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
	"github.com/cutoverhq/cutover/internal/traffic/traffictest"
)

func newRouter(t *testing.T, cfg traffic.TargetGroupConfig) (traffic.Router, string) {
	r, err := builtin.New([]traffic.TargetGroupConfig{cfg}, builtin.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := r.Addr(cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	return r, addr.String()
}

func TestConformance(t *testing.T) { traffictest.Run(t, newRouter) }

func TestSticky(t *testing.T) { traffictest.RunSticky(t, newRouter, true) }

func TestStats(t *testing.T) { traffictest.RunStats(t, newRouter, true) }
