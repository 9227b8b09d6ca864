package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestBrowserPlaysLive runs the demo in process and plays a live channel in
// Debian's chromium over LL-HLS and WebRTC (tests/browser/live.mjs, with
// playwright-core), then plays back, seeks in and exports what the demo
// recorded meanwhile (tests/browser/playback.mjs). `make test` installs chromium and playwright-core; the
// test fails without them unless -short is given.
func TestBrowserPlaysLive(t *testing.T) {
	root, _ := filepath.Abs("../..")
	script := filepath.Join(root, "tests/browser/live.mjs")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, errNode := exec.LookPath("node")
	_, errChromium := os.Stat(chromium)
	_, errPW := os.Stat(filepath.Join(root, "tests/browser/node_modules/playwright-core"))
	if errNode != nil || errChromium != nil || errPW != nil {
		if testing.Short() {
			t.Skip("node, chromium or playwright-core missing (make test-deps installs them)")
		}
		t.Fatalf("browser test needs node, %s and tests/browser/node_modules (run make test-deps): %v %v %v", chromium, errNode, errChromium, errPW)
	}

	cfg := DemoConfig("127.0.0.1:0", t.TempDir())
	cfg.GB.SIPAddr = "127.0.0.1:0"
	cfg.Live.WebRTCUDPAddr = "127.0.0.1:0"
	// The prober (first round a second after start) marks the cameras
	// online, as in the demo.
	d, err := StartDemo(t.Context(), DemoOptions{Config: cfg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	shots := os.Getenv("XUELIANG_SCREENSHOTS") // e.g. docs/screenshots
	if shots != "" {
		shots, _ = filepath.Abs(filepath.Join(root, shots))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// Live first; then playback of what the demo recorded meanwhile; then a
	// GB/T 28181 channel live and from its device's recordings.
	for _, script := range []string{script, filepath.Join(root, "tests/browser/playback.mjs"), filepath.Join(root, "tests/browser/gb.mjs")} {
		args := []string{script, d.App.URL()}
		if shots != "" {
			args = append(args, shots)
		}
		cmd := exec.CommandContext(ctx, "node", args...)
		cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
		out, err := cmd.CombinedOutput()
		t.Logf("%s:\n%s", filepath.Base(script), out)
		if err != nil {
			t.Fatalf("browser test %s failed: %v", filepath.Base(script), err)
		}
	}
}
