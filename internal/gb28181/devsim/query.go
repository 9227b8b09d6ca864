package devsim

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// onMessage answers the platform's MESSAGEs to a device: 200 OK at once,
// then the Response MESSAGEs (GB/T 28181-2016 §9.5.2: the query's answer is
// a separate MESSAGE request from the device).
func (s *Sim) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	d := s.byID[req.Recipient.User]
	if d == nil {
		if to := req.To(); to != nil {
			d = s.byID[to.Address.User]
		}
	}
	if d == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 404, "Not Found", nil))
		return
	}
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	if m.Root != manscdp.RootQuery {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	var bodies [][]byte
	switch m.CmdType {
	case manscdp.CmdCatalog:
		bodies, err = d.catalog(m.SN)
	case manscdp.CmdDeviceInfo:
		bodies, err = d.deviceInfo(m)
	case manscdp.CmdDeviceStatus:
		bodies, err = d.deviceStatus(m)
	default:
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	if err != nil {
		s.log.Warn("encode response", "device", d.id, "cmd", m.CmdType, "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	cmd := m.CmdType
	s.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 2*requestTimeout)
		defer cancel()
		for _, b := range bodies {
			if code, err := d.send(ctx, b); err != nil || code != 200 {
				s.failures.Add(1)
				s.log.Warn("response not delivered", "device", d.id, "cmd", cmd, "code", code, "err", err)
				return
			}
		}
		if cmd == manscdp.CmdCatalog {
			s.catalogQueries.Add(1)
		} else {
			s.queries.Add(1)
		}
	})
}

type catalogResponse struct {
	XMLName    xml.Name `xml:"Response"`
	CmdType    string
	SN         int
	DeviceID   string
	SumNum     int
	DeviceList struct {
		Num   int           `xml:"Num,attr"`
		Items []catalogItem `xml:"Item"`
	}
}

type catalogItem struct {
	DeviceID     string
	Name         string
	Manufacturer string
	Model        string
	Owner        string
	CivilCode    string
	Address      string
	Parental     int
	ParentID     string
	SafetyWay    int
	RegisterWay  int
	Secrecy      int
	Status       string
	Longitude    string
	Latitude     string
}

const (
	manufacturer = "Xueliang"
	model        = "SIM-NVR"
	firmware     = "1.0"
)

// Around Qingyuan (清远市), the demo city.
const baseLon, baseLat = 113.0560, 23.6820

// maxBody is the largest MANSCDP body a device sends: sipgo refuses UDP
// datagrams above sip.UDPMTUSize-200 bytes (RFC 3261 §18.1.1), and the SIP
// headers of a MESSAGE take up to about 500 of them.
var maxBody = sip.UDPMTUSize - 200 - 500

// catalog builds the Response Catalog messages (GB/T 28181-2016 A.2.6),
// CatalogPageSize items each, or fewer where a page would not fit in a UDP
// datagram.
func (d *device) catalog(sn int) ([][]byte, error) {
	cfg := &d.sim.cfg
	items := make([]catalogItem, len(d.channels))
	for j := range d.channels {
		n := d.index*cfg.ChannelsPerDevice + j
		items[j] = catalogItem{
			DeviceID:     d.channels[j],
			Name:         fmt.Sprintf("模拟通道 %d", j+1),
			Manufacturer: manufacturer,
			Model:        model,
			Owner:        "Owner",
			CivilCode:    cfg.DivisionCode,
			Address:      fmt.Sprintf("模拟地址 %d", n+1),
			Parental:     0,
			ParentID:     d.id,
			RegisterWay:  1,
			Status:       manscdp.StatusOn,
			Longitude:    fmt.Sprintf("%.6f", baseLon+float64(n%200)*0.001),
			Latitude:     fmt.Sprintf("%.6f", baseLat+float64(n/200%200)*0.001),
		}
	}
	var out [][]byte
	var page func(items []catalogItem) error
	page = func(items []catalogItem) error {
		r := catalogResponse{CmdType: manscdp.CmdCatalog, SN: sn, DeviceID: d.id, SumNum: len(d.channels)}
		r.DeviceList.Num = len(items)
		r.DeviceList.Items = items
		b, err := manscdp.Marshal(&r, "GB2312")
		if err != nil {
			return err
		}
		if len(b) > maxBody && len(items) > 1 {
			half := len(items) / 2
			if err := page(items[:half]); err != nil {
				return err
			}
			return page(items[half:])
		}
		out = append(out, b)
		return nil
	}
	for start := 0; start < len(items) || start == 0; start += cfg.CatalogPageSize {
		end := min(start+cfg.CatalogPageSize, len(items))
		if err := page(items[start:end]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// target is the queried code when it is the device or one of its channels.
func (d *device) target(m *manscdp.Message) string {
	for _, c := range d.channels {
		if m.DeviceID == c {
			return c
		}
	}
	return d.id
}

type deviceInfoResponse struct {
	XMLName      xml.Name `xml:"Response"`
	CmdType      string
	SN           int
	DeviceID     string
	DeviceName   string
	Result       string
	Manufacturer string
	Model        string
	Firmware     string
	Channel      int
}

func (d *device) deviceInfo(m *manscdp.Message) ([][]byte, error) {
	b, err := manscdp.Marshal(&deviceInfoResponse{
		CmdType: manscdp.CmdDeviceInfo, SN: m.SN, DeviceID: d.target(m),
		DeviceName: fmt.Sprintf("模拟设备 %d", d.index+1), Result: manscdp.StatusOK,
		Manufacturer: manufacturer, Model: model, Firmware: firmware, Channel: len(d.channels),
	}, "GB2312")
	return [][]byte{b}, err
}

type deviceStatusResponse struct {
	XMLName    xml.Name `xml:"Response"`
	CmdType    string
	SN         int
	DeviceID   string
	Result     string
	Online     string
	Status     string
	Encode     string
	Record     string
	DeviceTime string
}

func (d *device) deviceStatus(m *manscdp.Message) ([][]byte, error) {
	b, err := manscdp.Marshal(&deviceStatusResponse{
		CmdType: manscdp.CmdDeviceStatus, SN: m.SN, DeviceID: d.target(m), Result: manscdp.StatusOK,
		Online: manscdp.Online, Status: manscdp.StatusOK, Encode: manscdp.StatusOn, Record: manscdp.StatusOff,
		DeviceTime: manscdp.FormatTime(time.Now()),
	}, "GB2312")
	return [][]byte{b}, err
}
