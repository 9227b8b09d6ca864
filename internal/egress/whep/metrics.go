package whep

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Prometheus metrics of a Server, namespace xueliang,
// subsystem whep.
type metrics struct {
	active   prometheus.Gauge       // sessions set up and not closed
	setups   *prometheus.CounterVec // POST results, label result
	closed   *prometheus.CounterVec // session ends, label reason
	frames   *prometheus.CounterVec // units sent, label kind (video, audio)
	drops    prometheus.Counter     // units lost by slow session readers
	keyframe *prometheus.CounterVec // keyframe requests received, label type (pli, fir)
}

func newMetrics() *metrics {
	const ns, sub = "xueliang", "whep"
	return &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_active",
			Help: "WHEP sessions set up and not yet closed.",
		}),
		setups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_total",
			Help: "WHEP session requests (POST) by result: created or the error code returned.",
		}, []string{"result"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "sessions_closed_total",
			Help: "WHEP sessions closed, by reason.",
		}, []string{"reason"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "frames_sent_total",
			Help: "Media units sent to WHEP players, by kind (video, audio).",
		}, []string{"kind"}),
		drops: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reader_drops_total",
			Help: "Media units lost because a WHEP session fell behind its stream.",
		}),
		keyframe: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "plis_received_total",
			Help: "Keyframe requests received from WHEP players, by RTCP type (pli, fir).",
		}, []string{"type"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := []prometheus.Collector{m.active, m.setups, m.closed, m.frames, m.drops, m.keyframe}
	for i, c := range cs {
		if err := r.Register(c); err != nil {
			for _, done := range cs[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}
