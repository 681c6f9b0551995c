package accounts_test

import (
	"context"
	"testing"

	"github.com/trailmap/trailmap/accounts"
	"github.com/trailmap/trailmap/storage/index"
)

func TestStore_HasUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, st *accounts.Store, _ *index.DB) {
		ctx := context.Background()
		if got, err := st.HasUsers(ctx); err != nil || got {
			t.Fatalf("fresh store: HasUsers %v, %v; want false", got, err)
		}
		if err := st.CreateUser(ctx, &accounts.User{Email: "a@example.com", Role: accounts.RoleAdmin, CreatedAt: t0}, "hash"); err != nil {
			t.Fatal(err)
		}
		if got, err := st.HasUsers(ctx); err != nil || !got {
			t.Fatalf("with a user: HasUsers %v, %v; want true", got, err)
		}
	})
}
