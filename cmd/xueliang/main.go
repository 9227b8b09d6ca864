// Command xueliang is the Xueliang (雪亮) public-safety video platform: one
// binary with the subcommands serve, demo, sim, config and version.
package main

import (
	"os"

	"github.com/xueliang/xueliang/internal/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
