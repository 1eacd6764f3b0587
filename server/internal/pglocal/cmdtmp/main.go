package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/liggare/liggare/server/internal/pglocal"
)

func main() {
	ctx := context.Background()
	b := time.Now()
	c, err := pglocal.Start(ctx, pglocal.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println("start", time.Since(b))
	defer os.RemoveAll(c.Dir())
	defer c.Stop(ctx)
	conn, _ := pgx.Connect(ctx, c.URL("postgres"))
	for _, strat := range []string{"WAL_LOG", "FILE_COPY", "WAL_LOG", "FILE_COPY"} {
		for i := range 3 {
			b := time.Now()
			if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE d%d STRATEGY %s", i, strat)); err != nil {
				panic(err)
			}
			t1 := time.Since(b)
			b = time.Now()
			conn.Exec(ctx, fmt.Sprintf("DROP DATABASE d%d", i))
			fmt.Println(strat, t1, "drop", time.Since(b))
		}
	}
}
