package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/xueliang/xueliang/internal/config"
	"github.com/xueliang/xueliang/internal/gb28181/devsim"
)

// cmdSimGB runs simulated GB/T 28181 devices against a platform.
func cmdSimGB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	def := config.Default().GB
	fs := flag.NewFlagSet("sim gb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "127.0.0.1:5060", "SIP `address` of the platform")
	platformID := fs.String("platform-id", def.ID, "the platform's 20-digit SIP `ID`")
	password := fs.String("password", "", "registration `password` of the devices")
	devices := fs.Int("devices", 1, "number of devices")
	channels := fs.Int("channels", 8, "channels per device (more than 1: NVRs, else IPCs)")
	division := fs.String("division", "44180200", "8-digit centre `code` that starts the generated codes")
	civil := fs.String("civil-code", "", "CivilCode of the channels in the catalog (default: --division)")
	pageSize := fs.Int("page-size", 10, "catalog items per MESSAGE")
	keepalive := fs.Duration("keepalive", 60*time.Second, "keepalive `interval`")
	rate := fs.Int("rate", 0, "devices started per second (0: all at once, a registration storm)")
	localIP := fs.String("local-ip", "127.0.0.1", "`IP` the devices' SIP and media sockets use")
	clip := fs.String("clip", "", "clip `name` the cameras stream (default: rotate the embedded clips)")
	control := fs.String("control", "", "HTTP control API `address` (GET /devices, POST /devices/{id}/fault, POST /channels/{id}/alarm, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *password == "" {
		return errors.New("sim gb: --password is required (the platform's gb28181.password)")
	}
	log, err := NewLogger(config.Default().Log, stderr)
	if err != nil {
		return err
	}
	s, err := devsim.Start(ctx, devsim.Config{
		Server: *server, PlatformID: *platformID, Password: *password,
		Devices: *devices, ChannelsPerDevice: *channels, DivisionCode: *division, CivilCode: *civil,
		CatalogPageSize: *pageSize, KeepaliveInterval: *keepalive, StartRate: *rate,
		LocalIP: *localIP, Clip: *clip, Log: log,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "%d simulated GB/T 28181 devices (%d channels each) registering with %s as %s...\n",
		*devices, *channels, *server, s.DeviceIDs()[0])
	if *control != "" {
		ln, err := net.Listen("tcp", *control)
		if err != nil {
			return fmt.Errorf("sim gb: control API: %w", err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stdout, "control API at http://%s/devices\n", ln.Addr())
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			st := s.Stats()
			log.Info("devices", "registered", st.Registered, "of", st.Devices, "keepalives", st.Keepalives, "failures", st.Failures)
		}
	}
}
