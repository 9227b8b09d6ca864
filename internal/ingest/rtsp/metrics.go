package rtsp

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus counters of all RTSP sources of a process. A
// nil *Metrics counts nothing.
type Metrics struct {
	packets, lostPackets, decodeErrors, units, bytes prometheus.Counter
}

// NewMetrics creates the counters and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "xueliang", Subsystem: "rtsp", Name: name, Help: help})
	}
	m := &Metrics{
		packets:      c("rtp_packets_total", "RTP packets received from RTSP cameras."),
		lostPackets:  c("rtp_packets_lost_total", "RTP packets missing in the sequence (UDP loss)."),
		decodeErrors: c("decode_errors_total", "RTP packets that could not be decoded into access units."),
		units:        c("units_total", "Access units (frames) delivered to the stream hub."),
		bytes:        c("payload_bytes_total", "Payload bytes of the access units delivered."),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.packets, m.lostPackets, m.decodeErrors, m.units, m.bytes} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) packet() {
	if m != nil {
		m.packets.Inc()
	}
}

func (m *Metrics) lost(n uint64) {
	if m != nil {
		m.lostPackets.Add(float64(n))
	}
}

func (m *Metrics) decodeError() {
	if m != nil {
		m.decodeErrors.Inc()
	}
}

func (m *Metrics) unit(size int) {
	if m != nil {
		m.units.Inc()
		m.bytes.Add(float64(size))
	}
}
