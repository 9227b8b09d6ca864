package streams

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the Prometheus collector of a Hub: counters it keeps itself
// and gauges read from the paths at scrape time.
type metrics struct {
	h        *Hub
	starts   prometheus.Counter
	failures *prometheus.CounterVec

	paths   *prometheus.Desc
	readers *prometheus.Desc
	dropped *prometheus.Desc
	bytes   *prometheus.Desc
}

func newMetrics(h *Hub) *metrics {
	return &metrics{
		h: h,
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "xueliang", Subsystem: "streams", Name: "source_starts_total",
			Help: "Sources that came online.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "xueliang", Subsystem: "streams", Name: "source_failures_total",
			Help: "Source attempts that failed or ended, by reason.",
		}, []string{"reason"}),
		paths: prometheus.NewDesc("xueliang_streams_paths",
			"Paths by state.", []string{"state"}, nil),
		readers: prometheus.NewDesc("xueliang_streams_users",
			"Users (viewers and pins) of all paths.", nil, nil),
		dropped: prometheus.NewDesc("xueliang_streams_reader_dropped_units",
			"Units lost by slow readers of the streams online now.", nil, nil),
		bytes: prometheus.NewDesc("xueliang_streams_received_bytes",
			"Payload bytes received by the streams online now.", nil, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.starts.Describe(ch)
	m.failures.Describe(ch)
	ch <- m.paths
	ch <- m.readers
	ch <- m.dropped
	ch <- m.bytes
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.starts.Collect(ch)
	m.failures.Collect(ch)
	byState := map[State]int{StateIdle: 0, StateConnecting: 0, StateOnline: 0, StateOffline: 0}
	users := 0
	var dropped, bytes uint64
	for _, pi := range m.h.Paths() {
		byState[pi.State]++
		users += pi.Users
		dropped += pi.Stats.Dropped
		bytes += pi.Stats.Bytes
	}
	for st, n := range byState {
		ch <- prometheus.MustNewConstMetric(m.paths, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(m.readers, prometheus.GaugeValue, float64(users))
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.GaugeValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(bytes))
}
