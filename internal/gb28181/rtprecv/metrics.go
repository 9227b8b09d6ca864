package rtprecv

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xueliang/xueliang/internal/media"
)

// Metrics are the Prometheus metrics of all receivers of a process. A nil
// *Metrics counts nothing. Receivers add their packet counters at every tick
// (at most 100 ms apart) rather than per packet.
type Metrics struct {
	packets, bytes, lost, reordered, duplicates, wrongSSRC, invalid, frames, dropped prometheus.Counter

	sessions *prometheus.CounterVec // by mode
	active   *prometheus.GaugeVec   // by mode
	failures *prometheus.CounterVec // by reason
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "gb28181_media", Name: name, Help: help})
	}
	m := &Metrics{
		packets:    c("rtp_packets_total", "RTP packets of GB/T 28181 media sessions (of the expected SSRC)."),
		bytes:      c("rtp_bytes_total", "Bytes of those RTP packets."),
		lost:       c("rtp_packets_lost_total", "RTP packets missing from the sequence."),
		reordered:  c("rtp_packets_reordered_total", "UDP RTP packets that arrived out of order and were put back in place."),
		duplicates: c("rtp_packets_duplicate_total", "RTP packets received twice."),
		wrongSSRC:  c("rtp_packets_wrong_ssrc_total", "RTP packets dropped because their SSRC is not the session's."),
		invalid:    c("invalid_packets_total", "Datagrams or TCP frames that are not RTP."),
		frames:     c("frames_total", "Video and audio frames delivered to the stream hub."),
		dropped:    c("frames_dropped_total", "Frames demultiplexed but not delivered (before the first keyframe, damaged by loss, unused streams)."),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "gb28181_media",
			Name: "sessions_total", Help: "Media sessions run, by transport mode."}, []string{"mode"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "xueliang", Subsystem: "gb28181_media",
			Name: "sessions_active", Help: "Media sessions running now, by transport mode."}, []string{"mode"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "gb28181_media",
			Name: "session_failures_total", Help: "Media sessions that failed, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.packets, m.bytes, m.lost, m.reordered, m.duplicates, m.wrongSSRC,
			m.invalid, m.frames, m.dropped, m.sessions, m.active, m.failures} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) sessionStarted(mode Mode) {
	if m != nil {
		m.sessions.WithLabelValues(mode.String()).Inc()
		m.active.WithLabelValues(mode.String()).Inc()
	}
}

func (m *Metrics) sessionEnded(mode Mode) {
	if m != nil {
		m.active.WithLabelValues(mode.String()).Dec()
	}
}

func (m *Metrics) failed(r media.Reason) {
	if m != nil {
		m.failures.WithLabelValues(string(r)).Inc()
	}
}

// add adds the difference between two snapshots of a receiver's counters.
func (m *Metrics) add(now, before *Stats) {
	if m == nil {
		return
	}
	for _, c := range []struct {
		c         prometheus.Counter
		now, then uint64
	}{
		{m.packets, now.Packets, before.Packets},
		{m.bytes, now.Bytes, before.Bytes},
		{m.lost, now.Lost, before.Lost},
		{m.reordered, now.Reordered, before.Reordered},
		{m.duplicates, now.Duplicates, before.Duplicates},
		{m.wrongSSRC, now.WrongSSRC, before.WrongSSRC},
		{m.invalid, now.Invalid, before.Invalid},
		{m.frames, now.Frames, before.Frames},
		{m.dropped, now.Dropped, before.Dropped},
	} {
		if c.now > c.then {
			c.c.Add(float64(c.now - c.then))
		}
	}
}
