package record

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	runs, parts, segments, bytes, dropped, writeErrors, indexErrors prometheus.Counter
}

func newMetrics() *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "record", Name: name, Help: help})
	}
	return &metrics{
		runs:        c("runs_total", "Recording runs started (one per connection of a recorded source)."),
		parts:       c("parts_total", "Parts (moof+mdat fragments) written."),
		segments:    c("segments_total", "Segments finished."),
		bytes:       c("bytes_total", "Bytes of finished segments."),
		dropped:     c("dropped_units_total", "Units lost because the recorder fell behind the source."),
		writeErrors: c("write_errors_total", "Failed writes of segment files (full or failing disk)."),
		indexErrors: c("index_errors_total", "Finished segments that could not be indexed."),
	}
}

func (m *metrics) all() []prometheus.Counter {
	return []prometheus.Counter{m.runs, m.parts, m.segments, m.bytes, m.dropped, m.writeErrors, m.indexErrors}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
