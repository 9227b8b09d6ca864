package llhls

import "github.com/prometheus/client_golang/prometheus"

// metrics is the Prometheus collector of a Server.
type metrics struct {
	muxers       prometheus.Gauge
	requests     *prometheus.CounterVec
	dropped      prometheus.Counter
	errors       prometheus.Counter
	startSeconds prometheus.Histogram
}

func newMetrics() *metrics {
	const ns, sub = "xueliang", "llhls"
	return &metrics{
		muxers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "muxers",
			Help: "Channel muxers running, including those starting or stopping.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "HTTP requests by result: ok or the error code answered.",
		}, []string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reader_dropped_units_total",
			Help: "Units the muxers lost because they read their stream too slowly.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "muxer_errors_total",
			Help: "Muxer failures and encode errors.",
		}),
		startSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "muxer_start_seconds",
			Help:    "Time from the first unit of a muxer to its first segment.",
			Buckets: []float64{0.25, 0.5, 1, 2, 3, 5, 10},
		}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.muxers.Describe(ch)
	m.requests.Describe(ch)
	m.dropped.Describe(ch)
	m.errors.Describe(ch)
	m.startSeconds.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.muxers.Collect(ch)
	m.requests.Collect(ch)
	m.dropped.Collect(ch)
	m.errors.Collect(ch)
	m.startSeconds.Collect(ch)
}
