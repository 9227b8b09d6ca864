package platform

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/xueliang/xueliang/internal/gb28181/codes"
	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/store"
)

// writeCatalogs stores finished catalogs, and those whose missing messages
// never came (after CatalogTimeout of silence) as far as they arrived.
func (p *Platform) writeCatalogs() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.catalog.signal:
			for _, c := range p.catalog.drain() {
				p.storeCatalog(c)
			}
		case <-tick.C:
			for _, c := range p.asm.Expire(p.cfg.CatalogTimeout) {
				if c.CmdType == manscdp.CmdCatalog {
					p.log.Warn("catalog incomplete: the device did not send every message; storing what arrived",
						"device", c.DeviceID, "sum", c.SumNum, "missing", c.Missing, "messages", c.Messages)
					p.storeCatalog(c)
				} else {
					p.collected(c) // a RecordInfo waiter takes what arrived
				}
			}
		}
	}
}

// deviceID returns the database ID of a device by code.
func (p *Platform) deviceID(ctx context.Context, code string) (int64, error) {
	p.mu.Lock()
	id, ok := p.ids[code]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	d, err := p.st.GetDeviceByCode(ctx, code)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	p.ids[code] = d.ID
	p.mu.Unlock()
	return d.ID, nil
}

// storeCatalog writes one device's catalog.
func (p *Platform) storeCatalog(c *manscdp.Collection) {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	id, err := p.deviceID(ctx, c.DeviceID)
	if err != nil {
		p.log.Warn("catalog of a device not in the database", "device", c.DeviceID, "err", err)
		return
	}
	chans, groups, skipped := p.catalogRows(ctx, c.DeviceID, c.Catalog)
	noncompliant := 0
	for _, ch := range chans {
		if problems := p.checkCode("channel", ch.Code); problems != "" {
			if noncompliant == 0 {
				p.log.Warn("channel codes do not follow GB/T 28181 Annex D (first shown; the catalog line counts them)",
					"device", c.DeviceID, "channel", ch.Code, "problems", problems)
			}
			noncompliant++
		}
	}
	res, err := p.st.SyncCatalog(ctx, id, chans, groups, c.Complete)
	if err != nil {
		p.log.Error("cannot store a catalog; it is read again at the device's next registration", "device", c.DeviceID, "err", err)
		return
	}
	p.metrics.catalogItems.Add(float64(len(chans)))
	p.log.Info("catalog stored", "device", c.DeviceID, "channels", len(chans), "groups", len(groups),
		"added", res.Added, "updated", res.Updated, "removed", res.Removed, "foreign", res.Foreign,
		"skipped", skipped, "noncompliant", noncompliant, "complete", c.Complete, "messages", c.Messages)
}

// catalogRows turns catalog items into channels and groups, placing each
// in its division.
func (p *Platform) catalogRows(ctx context.Context, device string, items []manscdp.CatalogItem) (chans []store.CatalogChannel, groups []store.CatalogGroup, skipped int) {
	for _, it := range items {
		code, err := codes.Parse(it.DeviceID)
		if err != nil {
			skipped++ // a division node of a lower platform's catalog, or garbage
			continue
		}
		parent := lastPathElem(it.ParentID)
		if parent == "" {
			parent = it.BusinessGroupID
		}
		switch {
		case code.IsGroup():
			kind := "business_group"
			if code.Kind() == codes.KindVirtualOrganization {
				kind = "virtual_organization"
			}
			groups = append(groups, store.CatalogGroup{Code: it.DeviceID, Name: trimName(it.Name), Kind: kind,
				ParentCode: parent, DivisionCode: p.placeCode(ctx, it.CivilCode, code)})
		case code.IsChannel() || code.Kind() == codes.KindUnknown && it.Parental == 0:
			if parent == "" || parent == it.DeviceID {
				parent = device
			}
			chans = append(chans, store.CatalogChannel{
				Code: it.DeviceID, Name: trimName(it.Name), DivisionCode: p.placeCode(ctx, it.CivilCode, code),
				ParentCode: parent, Lat: it.Latitude, Lng: it.Longitude, PTZType: it.PTZType,
				Status: catalogStatus(it),
			})
		default:
			skipped++ // devices and platforms listed by a lower platform
		}
	}
	return chans, groups, skipped
}

// catalogStatus normalises a catalog item's Status (manscdp has upper-cased
// it) to ON, OFF, VLOST or DEFECT.
func catalogStatus(it manscdp.CatalogItem) string {
	switch {
	case it.Status == "" || it.Online():
		return "ON"
	case it.Status == "VLOST" || it.Status == "DEFECT":
		return it.Status
	}
	return "OFF"
}

func lastPathElem(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// catalogNotify applies a catalog notification (subscription or not):
// ON, OFF, VLOST and DEFECT change a channel's status, ADD and UPDATE
// (re)write it, DEL marks it removed. The device gets a Response.
func (p *Platform) catalogNotify(device string, m *manscdp.Message) {
	p.ackNotify(device, m)
	cat, err := m.Catalog()
	if err != nil {
		p.log.Warn("bad catalog notify", "device", device, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	id, err := p.deviceID(ctx, device)
	if err != nil {
		p.log.Warn("catalog notify from a device not in the database", "device", device, "err", err)
		return
	}
	var upserts []manscdp.CatalogItem
	for _, it := range cat.Items {
		switch it.Event {
		case "ON", "OFF", "VLOST", "DEFECT", "DEL":
			err := p.st.SetCatalogStatus(ctx, id, it.DeviceID, it.Event, time.Now())
			if errors.Is(err, store.ErrNotFound) {
				p.log.Info("catalog event for an unknown channel", "device", device, "channel", it.DeviceID, "event", it.Event)
			} else if err != nil {
				p.log.Warn("store catalog event", "device", device, "channel", it.DeviceID, "err", err)
			}
		case "ADD", "UPDATE", "":
			upserts = append(upserts, it)
		default:
			p.log.Info("unknown catalog event", "device", device, "channel", it.DeviceID, "event", it.Event)
		}
	}
	if len(upserts) > 0 {
		chans, groups, _ := p.catalogRows(ctx, device, upserts)
		if _, err := p.st.SyncCatalog(ctx, id, chans, groups, false); err != nil {
			p.log.Warn("store catalog notify", "device", device, "err", err)
		}
	}
}

// placeDevice returns the division of a new device from its code, or "".
func (p *Platform) placeDevice(c codes.Code) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.placeCode(ctx, "", c)
}

// placeCode finds the division of a channel, group or device: its
// CivilCode when that is a known division, else the deepest known division
// of its 8-digit centre code; a county the database does not have yet is
// created (named by its code, for an operator to rename), so that every
// channel lands in the tree.
func (p *Platform) placeCode(ctx context.Context, civil string, c codes.Code) string {
	for _, cand := range divisionCandidates(civil) {
		if p.knownDivision(cand) {
			return cand
		}
	}
	cands := divisionCandidates(c.Province + c.City + c.County)
	for _, cand := range cands {
		if p.knownDivision(cand) {
			if len(cand) == 6 && cand != cands[0] && strings.HasSuffix(cand, "00") && c.County != "00" {
				break // only the city is known: create the county below it
			}
			return cand
		}
	}
	return p.ensureDivision(ctx, cands[0])
}

// knownDivision reports whether a division exists: from the cache, else
// from the database (divisions are added through the API while the
// platform runs); a miss is remembered for a minute.
func (p *Platform) knownDivision(code string) bool {
	p.mu.Lock()
	known, missed := p.divisions[code], p.missing[code]
	p.mu.Unlock()
	if known || time.Since(missed) < time.Minute {
		return known
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.st.GetDivision(ctx, code)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.divisions[code] = true
		delete(p.missing, code)
		return true
	}
	p.missing[code] = time.Now()
	return false
}

// divisionCandidates lists the division codes a civil or centre code may
// name, deepest first: "44180201" → 441802, 441800, 440000, 4418, 44.
func divisionCandidates(s string) []string {
	if len(s) < 2 || !allDigits(s) {
		return nil
	}
	var out []string
	switch len(s) {
	case 12, 9:
		out = append(out, s)
		if len(s) == 12 {
			out = append(out, s[:9])
		}
	}
	if len(s) >= 6 {
		out = append(out, s[:6])
	}
	if len(s) >= 4 {
		out = append(out, s[:4]+"00", s[:4])
	}
	out = append(out, s[:2]+"0000", s[:2])
	// Drop "xx0000"-style duplicates of deeper entries.
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	return uniq
}

// ensureDivision creates code (6 digits) and its missing parents, named
// by their codes. It returns "" if that fails.
func (p *Platform) ensureDivision(ctx context.Context, code string) string {
	if len(code) != 6 {
		return ""
	}
	chain := []model.Division{{Code: code[:2] + "0000", Name: code[:2] + "0000", Level: model.DivisionLevelProvince}}
	if code[2:4] != "00" {
		chain = append(chain, model.Division{Code: code[:4] + "00", Name: code[:4] + "00", Level: model.DivisionLevelCity, ParentCode: chain[0].Code})
	}
	if code[4:6] != "00" {
		chain = append(chain, model.Division{Code: code, Name: code, Level: model.DivisionLevelCounty, ParentCode: chain[len(chain)-1].Code})
	}
	var missing []model.Division
	for _, d := range chain {
		if !p.knownDivision(d.Code) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		if err := p.st.UpsertDivisions(ctx, missing); err != nil {
			p.log.Warn("cannot create a division for a device's code", "division", code, "err", err)
			return ""
		}
		p.log.Info("division created from a device code; rename it in the organisation tree", "division", code)
	}
	p.mu.Lock()
	for _, d := range chain {
		p.divisions[d.Code] = true
		delete(p.missing, d.Code)
	}
	p.mu.Unlock()
	return chain[len(chain)-1].Code
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
