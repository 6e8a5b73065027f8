package server_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store/postgres"
)

// TestDatabaseMaxConns: --database-max-conns bounds a replica's
// PostgreSQL connections; requests beyond it wait for one and succeed.
func TestDatabaseMaxConns(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  int
		want int
	}{
		{"default", 0, postgres.MaxConns},
		{"two", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := servertest.Start(t, servertest.WithDatabase(pgtest.Start(t)), func(c *server.Config) { c.DatabaseMaxConns = tc.set })
			db, ok := env.Server.Store.(*postgres.DB)
			if !ok {
				t.Fatalf("store %T", env.Server.Store)
			}
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for range 40 {
				wg.Go(func() {
					_, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			st := db.Stats()
			if st.MaxOpenConnections != tc.want || st.OpenConnections > tc.want {
				t.Errorf("pool: max %d, open %d; want max %d", st.MaxOpenConnections, st.OpenConnections, tc.want)
			}
		})
	}
}
