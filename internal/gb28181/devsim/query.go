package devsim

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
)

// deviceOf finds the device a request is for: by the user of its
// Request-URI, then of its To header (the device's or one of its
// channels' code).
func (s *Sim) deviceOf(req *sip.Request) *device {
	if d := s.byID[req.Recipient.User]; d != nil {
		return d
	}
	if to := req.To(); to != nil {
		return s.byID[to.Address.User]
	}
	return nil
}

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string) {
	tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
}

// onMessage answers the platform's MESSAGEs to a device: 200 OK at once,
// then the Response MESSAGEs (GB/T 28181-2016 §9.5.2: the query's answer is
// a separate MESSAGE request from the device). A rebooting device answers
// nothing.
func (s *Sim) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	d := s.deviceOf(req)
	if d == nil {
		respond(tx, req, 404, "Not Found")
		return
	}
	if d.rebooting.Load() {
		return
	}
	m, err := manscdp.Parse(req.Body())
	if err != nil {
		respond(tx, req, 400, "Bad Request: "+firstLine(err.Error()))
		return
	}
	if m.Root == manscdp.RootControl {
		s.onControl(d, m, req, tx)
		return
	}
	if m.Root != manscdp.RootQuery {
		respond(tx, req, 200, "OK") // a Response or Notify of the platform
		return
	}
	var bodies [][]byte
	switch m.CmdType {
	case cmdCatalog:
		bodies, err = d.catalog(m.SN)
	case cmdDeviceInfo:
		bodies, err = d.deviceInfo(m)
	case cmdDeviceStatus:
		bodies, err = d.deviceStatus(m)
	case cmdRecordInfo:
		if bodies, err = d.recordInfo(m); err != nil {
			respond(tx, req, 400, "Bad Request: RecordInfo "+firstLine(err.Error()))
			return
		}
	case cmdPresetQuery:
		bodies, err = d.presetQuery(m)
	case cmdConfigDownload:
		bodies, err = d.configDownload(m)
	default:
		respond(tx, req, 200, "OK")
		return
	}
	if err != nil {
		s.log.Warn("encode response", "device", d.id, "cmd", m.CmdType, "err", err)
		respond(tx, req, 500, "Server Internal Error")
		return
	}
	respond(tx, req, 200, "OK")
	s.deliver(d, m.CmdType, bodies, func() {
		if m.CmdType == cmdCatalog {
			s.catalogQueries.Add(1)
		} else {
			s.queries.Add(1)
		}
	})
}

// deliver sends bodies to the platform from a tracked goroutine, then
// calls done if all were answered 200 OK.
func (s *Sim) deliver(d *device, what string, bodies [][]byte, done func()) {
	s.goTracked(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 2*requestTimeout)
		defer cancel()
		if err := d.sendAll(ctx, what, bodies); err != nil {
			if ctx.Err() == nil {
				s.failures.Add(1)
				s.log.Warn("response not delivered", "device", d.id, "cmd", what, "err", err)
			}
			return
		}
		if done != nil {
			done()
		}
	})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

type catalogResponse struct {
	XMLName    xml.Name // Response, or Notify for catalog events
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
	Event        string `xml:",omitempty"` // catalog notifications only
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
	Info         *catalogInfo `xml:",omitempty"`
}

type catalogInfo struct {
	PTZType int // 1 dome (GB/T 28181-2016 A.2.6.3 extension)
}

const (
	manufacturer = "Xueliang"
	model        = "SIM-NVR"
	firmware     = "1.0"
	statusOn     = "ON"
	statusOff    = "OFF"
	resultOK     = "OK"
	resultError  = "ERROR"
)

// Around Qingyuan (清远市), the demo city.
const baseLon, baseLat = 113.0560, 23.6820

// maxBody is the largest catalog page a device sends. Start raises sipgo's
// UDP limit far above it (RaiseSIPUDPLimit); the bound that remains is the
// platforms' receive buffers: sipgo reads a datagram into 32 KiB, and
// others into as little as 8 KiB.
const maxBody = 8 << 10

// channelName is the catalog name of channel ch, or of the device for -1.
func (d *device) channelName(ch int) string {
	if ch < 0 {
		return fmt.Sprintf("模拟设备 %d", d.index+1)
	}
	return fmt.Sprintf("模拟通道 %d", ch+1)
}

func (d *device) serial(ch int) int { return d.index*d.sim.cfg.ChannelsPerDevice + max(ch, 0) }

func (d *device) channelAddress(ch int) string {
	return fmt.Sprintf("模拟地址 %d", d.serial(ch)+1)
}

func (d *device) position(ch int) (lon, lat float64) {
	n := d.serial(ch)
	return baseLon + float64(n%200)*0.001, baseLat + float64(n/200%200)*0.001
}

// item is the catalog item of channel j. d.mu must be held.
func (d *device) itemLocked(j int) catalogItem {
	cfg := &d.sim.cfg
	lon, lat := d.position(j)
	status := statusOn
	if st := d.state[d.channels[j]]; st != nil {
		status = st.status
	}
	return catalogItem{
		DeviceID:     d.channels[j],
		Name:         d.channelName(j),
		Manufacturer: manufacturer,
		Model:        model,
		Owner:        "Owner",
		CivilCode:    cfg.CivilCode,
		Address:      d.channelAddress(j),
		Parental:     0,
		ParentID:     d.id,
		RegisterWay:  1,
		Status:       status,
		Longitude:    fmt.Sprintf("%.6f", lon),
		Latitude:     fmt.Sprintf("%.6f", lat),
		Info:         &catalogInfo{PTZType: 1},
	}
}

// catalog builds the Response Catalog messages (GB/T 28181-2016 A.2.6.3),
// CatalogPageSize items each, or fewer where a page would be over
// maxBody. Channels deleted by a DEL event are left out.
func (d *device) catalog(sn int) ([][]byte, error) {
	d.mu.Lock()
	var items []catalogItem
	for j, c := range d.channels {
		if st := d.state[c]; st != nil && st.deleted {
			continue
		}
		items = append(items, d.itemLocked(j))
	}
	d.mu.Unlock()
	return d.catalogPages(xml.Name{Local: "Response"}, sn, items)
}

// catalogPages splits items into Catalog messages with root name.
func (d *device) catalogPages(name xml.Name, sn int, items []catalogItem) ([][]byte, error) {
	var out [][]byte
	var page func(items []catalogItem) error
	page = func(part []catalogItem) error {
		r := catalogResponse{XMLName: name, CmdType: cmdCatalog, SN: sn, DeviceID: d.id, SumNum: len(items)}
		r.DeviceList.Num = len(part)
		r.DeviceList.Items = part
		b, err := d.body(&r)
		if err != nil {
			return err
		}
		if len(b) > maxBody && len(part) > 1 {
			half := len(part) / 2
			if err := page(part[:half]); err != nil {
				return err
			}
			return page(part[half:])
		}
		out = append(out, b)
		return nil
	}
	size := d.sim.cfg.CatalogPageSize
	for start := 0; start < len(items) || start == 0; start += size {
		end := min(start+size, len(items))
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
	b, err := d.body(&deviceInfoResponse{
		CmdType: cmdDeviceInfo, SN: m.SN, DeviceID: d.target(m),
		DeviceName: d.channelName(-1), Result: resultOK,
		Manufacturer: manufacturer, Model: model, Firmware: firmware, Channel: len(d.channels),
	})
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
	id := d.target(m)
	record := statusOff
	d.mu.Lock()
	if st := d.stateLocked(id); st != nil && st.recording {
		record = statusOn
	}
	d.mu.Unlock()
	cfg := &d.sim.cfg
	b, err := d.body(&deviceStatusResponse{
		CmdType: cmdDeviceStatus, SN: m.SN, DeviceID: id, Result: resultOK,
		Online: "ONLINE", Status: resultOK, Encode: statusOn, Record: record,
		DeviceTime: formatTime(cfg.Now(), cfg.Location),
	})
	return [][]byte{b}, err
}

type presetResponse struct {
	XMLName    xml.Name `xml:"Response"`
	CmdType    string
	SN         int
	DeviceID   string
	PresetList struct {
		Num   int          `xml:"Num,attr"`
		Items []presetItem `xml:"Item"`
	}
}

type presetItem struct {
	PresetID   string
	PresetName string
}

// presetQuery lists the presets of a channel (GB/T 28181-2016 A.2.4.8,
// A.2.6.11): the two it starts with and those set since.
func (d *device) presetQuery(m *manscdp.Message) ([][]byte, error) {
	id := d.target(m)
	r := presetResponse{CmdType: cmdPresetQuery, SN: m.SN, DeviceID: id}
	d.mu.Lock()
	if st := d.stateLocked(id); st != nil {
		for n := 1; n <= 255; n++ {
			if name, ok := st.presets[n]; ok {
				r.PresetList.Items = append(r.PresetList.Items, presetItem{PresetID: strconv.Itoa(n), PresetName: name})
			}
		}
	}
	d.mu.Unlock()
	r.PresetList.Num = len(r.PresetList.Items)
	b, err := d.body(&r)
	return [][]byte{b}, err
}

type configResponse struct {
	XMLName    xml.Name `xml:"Response"`
	CmdType    string
	SN         int
	DeviceID   string
	Result     string
	BasicParam *basicParam `xml:",omitempty"`
}

type basicParam struct {
	Name              string
	DeviceID          string
	SIPServerID       string
	SIPServerIP       string
	SIPServerPort     int
	DomainName        string
	Expiration        int
	HeartBeatInterval int
	HeartBeatCount    int
}

// configDownload answers ConfigDownload (GB/T 28181-2016 A.2.4.7,
// A.2.6.9) with the BasicParam it registers with; other ConfigTypes are
// not simulated (Result ERROR when BasicParam is not among them).
func (d *device) configDownload(m *manscdp.Message) ([][]byte, error) {
	cfg := &d.sim.cfg
	types, _ := m.Text("ConfigType")
	r := configResponse{CmdType: cmdConfigDownload, SN: m.SN, DeviceID: d.target(m), Result: resultError}
	for _, t := range strings.Split(types, "/") {
		if strings.EqualFold(strings.TrimSpace(t), "BasicParam") {
			r.Result = resultOK
			r.BasicParam = &basicParam{
				Name:              d.channelName(-1),
				DeviceID:          d.id,
				SIPServerID:       cfg.PlatformID,
				SIPServerIP:       d.sim.platform.Host,
				SIPServerPort:     d.sim.platform.Port,
				DomainName:        cfg.PlatformID[:10],
				Expiration:        cfg.RegisterExpires,
				HeartBeatInterval: int(math.Ceil(cfg.KeepaliveInterval.Seconds())),
				HeartBeatCount:    3,
			}
		}
	}
	b, err := d.body(&r)
	return [][]byte{b}, err
}

// onOptions answers OPTIONS, which some platforms send to probe devices.
func (s *Sim) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	d := s.deviceOf(req)
	switch {
	case d == nil:
		respond(tx, req, 404, "Not Found")
	case d.rebooting.Load():
	default:
		respond(tx, req, 200, "OK")
	}
}
