package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/server"
)

// parseSince reads an RFC 3339 time or a duration back from now ("2h").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: give RFC 3339 (2026-11-29T10:00:00Z) or a duration ago (90m)", s)
	}
	return t, nil
}

func runAudit(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("audit")
	dataDir, database := storeFlags(s.fs)
	since := s.fs.String("since", "24h", "entries at or after this time (RFC 3339, or a duration ago); empty for all")
	until := s.fs.String("until", "", "entries at or before this time (RFC 3339, or a duration ago)")
	key := s.fs.String("key", "", "only calls signed with this access key id")
	account := s.fs.String("account", "", "only calls of this account")
	op := s.fs.String("operation", "", "only this operation, e.g. codedeploy:DeleteApplication")
	outcome := s.fs.String("outcome", "", "only this outcome: Success or an error code such as AccessDeniedException")
	limit := s.fs.Int("limit", audit.MaxList, "at most this many entries")
	asJSON := s.fs.Bool("json", false, "print JSON lines")
	if err := s.parse(args); err != nil {
		return err
	}
	now := time.Now()
	f := audit.Filter{AccessKeyID: *key, Account: *account, Operation: *op, Outcome: *outcome, Limit: *limit}
	var err error
	if f.Since, err = parseSince(*since, now); err != nil {
		return err
	}
	if f.Until, err = parseSince(*until, now); err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer st.Close()
	entries, err := audit.List(ctx, st, f)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACCESS KEY\tPRINCIPAL\tREGION\tOPERATION\tRESOURCES\tSOURCE\tOUTCOME")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339Nano), dash(e.AccessKeyID), e.Principal, dash(e.Region),
			e.Operation, dash(strings.Join(e.Resources, ",")), e.Source, e.Outcome)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
