package app

import (
	"context"
	"sync"
	"time"

	"github.com/xueliang/xueliang/internal/media"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// probeConcurrency bounds the probes in flight, so that a city of RTSP
// cameras is checked as a trickle, not a storm.
const probeConcurrency = 8

// probeLoop keeps the status of channels that nobody watches true: every
// ProbeInterval it opens each idle channel's source until its tracks are
// known, then closes it again. Channels the hub is streaming already report
// their own status.
func (a *App) probeLoop(ctx context.Context) {
	t := time.NewTimer(time.Second) // first round soon after start
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.probeAll(ctx)
		t.Reset(a.cfg.Streams.ProbeInterval.D())
	}
}

func (a *App) probeAll(ctx context.Context) {
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	const page = 500
	for offset := 0; ; offset += page {
		chs, err := a.store.ListChannels(ctx, store.ChannelFilter{Limit: page, Offset: offset})
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("probe: list channels", "err", err)
			}
			return
		}
		for _, ch := range chs {
			if a.hub.Active(ch.ID) {
				continue // the hub reports the status of sources it runs
			}
			if ch.SourceURL == "" {
				// GB/T 28181 channels: their status comes from the
				// device's registration and catalog; probing a city's
				// channels with INVITEs would be a storm of its own.
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				a.probe(ctx, ch.ID)
			}()
		}
		if len(chs) < page {
			return
		}
	}
}

func (a *App) probe(ctx context.Context, id int64) {
	src, err := a.sourceFor(ctx, id)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.Streams.ReadTimeout.D()+5*time.Second)
	defer cancel()
	// The verdict is dated when the probe started, so that a report of
	// the hub that came meanwhile (a viewer opened the source) wins.
	started := time.Now()
	ok := false
	err = src.Run(pctx, func(tracks []*media.Track) *media.Stream {
		ok = true
		cancel() // tracks known: done
		return media.NewStream(tracks)
	})
	if ctx.Err() != nil || a.hub.Active(id) {
		return
	}
	switch {
	case ok:
		a.setStatus(id, model.ChannelStatusOnline, "", "", started)
	case err != nil:
		a.setStatus(id, model.ChannelStatusOffline, string(media.ReasonOf(err)), err.Error(), started)
	default: // Run returned nil on the timeout
		a.setStatus(id, model.ChannelStatusOffline, string(media.ReasonTimeout), "probe: no tracks in time", started)
	}
}
