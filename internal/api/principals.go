package api

import (
	"context"
	"strings"

	"github.com/cutoverhq/cutover/internal/store"
)

// InstanceOfPrincipal returns the on-premises instance registered with arn
// in any region of account, or "". Unlike InstanceOfCaller it does not
// trust the region the caller signed for: services without regions (the
// revision store) must not let a host key pass as another caller by
// signing for a region its instance is not registered in.
func (s *Server) InstanceOfPrincipal(ctx context.Context, account, arn string) (string, error) {
	var name string
	err := s.Store.View(ctx, func(tx store.Tx) error {
		after := ""
		for {
			items, err := tx.Scan(ctx, kindIamArn, account+"/", after, 500)
			if err != nil {
				return err
			}
			for _, it := range items {
				if strings.HasSuffix(it.Key, "/"+arn) {
					name = string(it.Value)
					return nil
				}
			}
			if len(items) < 500 {
				return nil
			}
			after = items[len(items)-1].Key
		}
	})
	return name, err
}
