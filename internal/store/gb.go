package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xueliang/xueliang/internal/model"
)

// What the GB/T 28181 side of the platform writes: the registrar's state of
// devices, in batches; devices' catalogs; alarms.

// DeviceState is the registrar's state of one GB/T 28181 device.
type DeviceState struct {
	Code string
	Kind model.DeviceKind // gb28181 or platform; used when the device is new
	// DivisionCode places a new device; "" leaves it unplaced. An existing
	// device keeps its division (an operator may have moved it).
	DivisionCode string
	Online       bool
	Reason       string // in words: "registered", "3 keepalives missed (60s interval)"
	Transport    string
	RemoteAddr   string
	At           time.Time
	Registered   bool // a REGISTER (rather than a keepalive or a timeout)
}

// ReasonDeviceOffline is the channel reason when its device is offline.
const ReasonDeviceOffline = model.ReasonDeviceOffline

// SaveDeviceStates writes a batch of device state changes in one
// transaction, creating devices it does not know, and returns the ID of
// every device in the batch by code. The channels of a device that went
// offline become offline (reason device_offline) unless media flows; those
// of a device that came back become idle again.
func (s *Store) SaveDeviceStates(ctx context.Context, states []DeviceState) (map[string]int64, error) {
	ids := make(map[string]int64, len(states))
	if len(states) == 0 {
		return ids, nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		upsert, err := tx.PrepareContext(ctx, `
INSERT INTO devices (code, name, kind, division_code, status, status_reason, transport, remote_addr,
	last_seen, registered_at, created_at, updated_at)
VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
ON CONFLICT (code) DO UPDATE SET
	status = excluded.status, status_reason = excluded.status_reason,
	transport = CASE WHEN excluded.transport <> '' THEN excluded.transport ELSE devices.transport END,
	remote_addr = CASE WHEN excluded.remote_addr <> '' THEN excluded.remote_addr ELSE devices.remote_addr END,
	last_seen = MAX(devices.last_seen, excluded.last_seen),
	registered_at = MAX(devices.registered_at, excluded.registered_at),
	division_code = COALESCE(devices.division_code, excluded.division_code),
	updated_at = excluded.updated_at
RETURNING id`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		offline, err := tx.PrepareContext(ctx, `
UPDATE channels SET status = 'offline', reason = $2, last_error = $3, status_changed_at = $4
WHERE device_id = $1 AND status IN ('idle', 'connecting', 'offline') AND reason <> $2`)
		if err != nil {
			return err
		}
		defer offline.Close()
		online, err := tx.PrepareContext(ctx, `
UPDATE channels SET status = 'idle', reason = '', last_error = '', status_changed_at = $2
WHERE device_id = $1 AND status = 'offline' AND reason = $3 AND catalog_status NOT IN ('OFF', 'DEL', 'VLOST', 'DEFECT')`)
		if err != nil {
			return err
		}
		defer online.Close()
		now := toMillis(s.nowMillis())
		for _, st := range states {
			kind := st.Kind
			if kind == "" {
				kind = model.DeviceKindGB28181
			}
			status := "offline"
			if st.Online {
				status = "online"
			}
			at := toMillis(st.At)
			if at == 0 {
				at = now
			}
			var seen, registered int64
			if st.Online {
				seen = at
			}
			if st.Registered && st.Online {
				registered = at
			}
			var id int64
			if err := upsert.QueryRowContext(ctx, st.Code, string(kind), nullString(st.DivisionCode), status,
				truncateUTF8(st.Reason, model.MaxDeviceFieldLen), st.Transport, st.RemoteAddr, seen, registered, now).Scan(&id); err != nil {
				return fmt.Errorf("device %s: %w", st.Code, s.writeErr(ctx, err, st.DivisionCode, 0))
			}
			ids[st.Code] = id
			if st.Online {
				_, err = online.ExecContext(ctx, id, at, ReasonDeviceOffline)
			} else {
				_, err = offline.ExecContext(ctx, id, ReasonDeviceOffline, "device offline: "+st.Reason, at)
			}
			if err != nil {
				return fmt.Errorf("channels of device %s: %w", st.Code, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: save device states: %w", err)
	}
	return ids, nil
}

// TouchDevices records when devices were last heard from (keepalives), in
// one transaction: a city's keepalives cost one write per batch, not one
// per message.
func (s *Store) TouchDevices(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE devices SET last_seen = $2 WHERE code = $1 AND last_seen < $2`)
		if err != nil {
			return err
		}
		defer st.Close()
		for code, at := range seen {
			if _, err := st.ExecContext(ctx, code, toMillis(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: touch devices: %w", err)
	}
	return nil
}

// GetDeviceByCode returns the device with the given code, or ErrNotFound.
func (s *Store) GetDeviceByCode(ctx context.Context, code string) (*model.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE code = $1`, code))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get device %s: %w", code, err)
	}
	return &d, nil
}

// SetDeviceInfo stores what a device says of itself (DeviceInfo). Empty
// values leave the stored ones; a name is written only over the default
// (the code).
func (s *Store) SetDeviceInfo(ctx context.Context, code, name, manufacturer, modelName, firmware string) error {
	_, err := s.w.ExecContext(ctx, `
UPDATE devices SET
	name = CASE WHEN $2 <> '' AND name = code THEN $2 ELSE name END,
	manufacturer = CASE WHEN $3 <> '' THEN $3 ELSE manufacturer END,
	model = CASE WHEN $4 <> '' THEN $4 ELSE model END,
	firmware = CASE WHEN $5 <> '' THEN $5 ELSE firmware END,
	updated_at = $6
WHERE code = $1`, code, truncateUTF8(name, model.MaxNameLen), truncateUTF8(manufacturer, model.MaxDeviceFieldLen),
		truncateUTF8(modelName, model.MaxDeviceFieldLen), truncateUTF8(firmware, model.MaxDeviceFieldLen), toMillis(s.nowMillis()))
	if err != nil {
		return fmt.Errorf("store: set device %s info: %w", code, err)
	}
	return nil
}

// SetDeviceClock stores a device's clock offset (its time minus ours).
func (s *Store) SetDeviceClock(ctx context.Context, code string, offset time.Duration, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE devices SET clock_offset_ms = $2, clock_checked_at = $3 WHERE code = $1`,
		code, offset.Milliseconds(), toMillis(at))
	if err != nil {
		return fmt.Errorf("store: set device %s clock: %w", code, err)
	}
	return nil
}

// CatalogChannel is a channel as a device's catalog describes it.
type CatalogChannel struct {
	Code         string
	Name         string
	DivisionCode string // where a new channel goes; must exist
	ParentCode   string
	Lat, Lng     float64
	PTZType      int
	// Status is the device's word: ON, OFF, VLOST, DEFECT, or DEL for a
	// channel removed from the catalog.
	Status string
}

// CatalogGroup is a business group (215) or virtual organisation (216).
type CatalogGroup struct {
	Code         string `json:"code"`
	Name         string `json:"name"`
	Kind         string `json:"kind"` // "business_group" or "virtual_organization"
	ParentCode   string `json:"parent_code"`
	DivisionCode string `json:"division"` // "" when not known
	DeviceID     int64  `json:"device_id"`
}

// CatalogResult counts what SyncCatalog did.
type CatalogResult struct {
	Added, Updated, Removed int
	// Foreign counts channels whose code belongs to a channel of another
	// kind (an RTSP channel): left alone.
	Foreign int
}

// SyncCatalog writes a device's catalog (or a part of it) in one
// transaction: new channels are created in their division, known ones get
// the catalog's name, parent, PTZ type and status (their division and a
// surveyed position are kept: operators may have corrected them). With
// complete set, the device's channels missing from channels are marked
// removed (status DEL, offline), not deleted: their recordings and plans
// stay.
func (s *Store) SyncCatalog(ctx context.Context, deviceID int64, channels []CatalogChannel, groups []CatalogGroup, complete bool) (CatalogResult, error) {
	var res CatalogResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = CatalogResult{}
		now := toMillis(s.nowMillis())
		if len(groups) > 0 {
			g, err := tx.PrepareContext(ctx, `
INSERT INTO catalog_groups (code, name, kind, parent_code, division_code, device_id, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, parent_code = excluded.parent_code,
	division_code = COALESCE(excluded.division_code, catalog_groups.division_code),
	device_id = excluded.device_id, updated_at = excluded.updated_at`)
			if err != nil {
				return err
			}
			defer g.Close()
			for _, gr := range groups {
				if _, err := g.ExecContext(ctx, gr.Code, truncateUTF8(gr.Name, model.MaxNameLen), gr.Kind, gr.ParentCode,
					nullString(gr.DivisionCode), nullID(deviceID), now); err != nil {
					return fmt.Errorf("group %s: %w", gr.Code, s.writeErr(ctx, err, gr.DivisionCode, 0))
				}
			}
		}
		find, err := tx.PrepareContext(ctx, `SELECT id, COALESCE(device_id, 0), source_url, lat, lng, status, reason FROM channels WHERE code = $1`)
		if err != nil {
			return err
		}
		defer find.Close()
		ins, err := tx.PrepareContext(ctx, `
INSERT INTO channels (code, name, device_id, division_code, lat, lng, parent_code, ptz_type, catalog_status,
	status, reason, status_changed_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $12)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		upd, err := tx.PrepareContext(ctx, `
UPDATE channels SET name = $2, device_id = $3, parent_code = $4, ptz_type = $5, catalog_status = $6,
	lat = $7, lng = $8, updated_at = $9,
	status = CASE WHEN status IN ('online', 'connecting') THEN status ELSE $10 END,
	reason = CASE WHEN status IN ('online', 'connecting') THEN reason ELSE $11 END,
	status_changed_at = CASE WHEN status IN ('online', 'connecting') OR status = $10 THEN status_changed_at ELSE $9 END
WHERE id = $1`)
		if err != nil {
			return err
		}
		defer upd.Close()
		seen := make(map[string]bool, len(channels))
		for _, c := range channels {
			seen[c.Code] = true
			status, reason := catalogChannelStatus(c.Status)
			var id, dev int64
			var url, oldStatus, oldReason string
			var lat, lng float64
			err := find.QueryRowContext(ctx, c.Code).Scan(&id, &dev, &url, &lat, &lng, &oldStatus, &oldReason)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := ins.ExecContext(ctx, c.Code, truncateUTF8(nameOr(c.Name, c.Code), model.MaxNameLen), nullID(deviceID),
					c.DivisionCode, c.Lat, c.Lng, c.ParentCode, c.PTZType, c.Status, status, reason, now); err != nil {
					return fmt.Errorf("channel %s: %w", c.Code, s.writeErr(ctx, err, c.DivisionCode, deviceID))
				}
				res.Added++
				continue
			case err != nil:
				return err
			}
			if url != "" {
				res.Foreign++
				continue
			}
			if lat == 0 && lng == 0 {
				lat, lng = c.Lat, c.Lng
			}
			if _, err := upd.ExecContext(ctx, id, truncateUTF8(nameOr(c.Name, c.Code), model.MaxNameLen), nullID(deviceID),
				c.ParentCode, c.PTZType, c.Status, lat, lng, now, status, reason); err != nil {
				return fmt.Errorf("channel %s: %w", c.Code, err)
			}
			res.Updated++
		}
		if complete {
			rows, err := tx.QueryContext(ctx, `SELECT id, code FROM channels WHERE device_id = $1 AND catalog_status <> 'DEL' AND source_url = ''`, deviceID)
			if err != nil {
				return err
			}
			var gone []int64
			for rows.Next() {
				var id int64
				var code string
				if err := rows.Scan(&id, &code); err != nil {
					rows.Close()
					return err
				}
				if !seen[code] {
					gone = append(gone, id)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, id := range gone {
				if _, err := tx.ExecContext(ctx, `
UPDATE channels SET catalog_status = 'DEL', status = 'offline', reason = 'removed_from_catalog',
	last_error = 'the device no longer lists this channel', status_changed_at = $2, updated_at = $2
WHERE id = $1`, id, now); err != nil {
					return err
				}
			}
			res.Removed = len(gone)
			if _, err := tx.ExecContext(ctx, `UPDATE devices SET catalog_at = $2 WHERE id = $1`, deviceID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: sync catalog of device %d: %w", deviceID, err)
	}
	return res, nil
}

// catalogChannelStatus maps a catalog status to a channel status.
func catalogChannelStatus(s string) (model.ChannelStatus, string) {
	switch s {
	case "", "ON", "ONLINE", "OK":
		return model.ChannelStatusIdle, ""
	case "DEL":
		return model.ChannelStatusOffline, "removed_from_catalog"
	case "VLOST":
		return model.ChannelStatusOffline, "video_lost"
	case "DEFECT":
		return model.ChannelStatusOffline, "device_defect"
	}
	return model.ChannelStatusOffline, "catalog_off"
}

func nameOr(name, code string) string {
	if name == "" {
		return code
	}
	return name
}

// ListCatalogGroups returns the business groups and virtual organisations
// of devices' catalogs, ordered by code.
func (s *Store) ListCatalogGroups(ctx context.Context) ([]CatalogGroup, error) {
	return queryAll(ctx, s, "list catalog groups", `
SELECT code, name, kind, parent_code, COALESCE(division_code, ''), COALESCE(device_id, 0) FROM catalog_groups ORDER BY code`, nil,
		func(sc scanner) (CatalogGroup, error) {
			var g CatalogGroup
			err := sc.Scan(&g.Code, &g.Name, &g.Kind, &g.ParentCode, &g.DivisionCode, &g.DeviceID)
			return g, err
		})
}

// InsertAlarm stores an alarm and sets a.ID; a.ChannelID is looked up from
// a.ChannelCode when 0.
func (s *Store) InsertAlarm(ctx context.Context, a *model.Alarm) error {
	if a.State == "" {
		a.State = "new"
	}
	if a.ReceivedAt.IsZero() {
		a.ReceivedAt = s.nowMillis()
	}
	if a.ChannelID == 0 && a.ChannelCode != "" {
		var id int64
		err := s.r.QueryRowContext(ctx, `SELECT id FROM channels WHERE code = $1`, a.ChannelCode).Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: insert alarm: %w", err)
		}
		a.ChannelID = id
	}
	err := s.w.QueryRowContext(ctx, `
INSERT INTO alarms (source, device_code, channel_code, channel_id, priority, method, type, description,
	lat, lng, occurred_at, received_at, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
		a.Source, a.DeviceCode, a.ChannelCode, nullID(a.ChannelID), a.Priority, a.Method,
		truncateUTF8(a.Type, 64), truncateUTF8(a.Description, 1024), a.Lat, a.Lng,
		toMillis(a.OccurredAt), toMillis(a.ReceivedAt), a.State).Scan(&a.ID)
	if err != nil {
		return fmt.Errorf("store: insert alarm: %w", err)
	}
	return nil
}

// AlarmFilter selects alarms for ListAlarms.
type AlarmFilter struct {
	ChannelID int64
	// Since and Until bound ReceivedAt (zero: unbounded).
	Since, Until time.Time
	Limit        int // default 100, at most 1000
	// BeforeID pages backwards: only alarms with a smaller ID.
	BeforeID int64
}

// ListAlarms returns alarms, newest first.
func (s *Store) ListAlarms(ctx context.Context, f AlarmFilter) ([]model.Alarm, error) {
	var a args
	q := `SELECT id, source, device_code, channel_code, COALESCE(channel_id, 0), priority, method, type, description,
	lat, lng, occurred_at, received_at, state FROM alarms WHERE 1 = 1`
	if f.ChannelID != 0 {
		q += ` AND channel_id = ` + a.add(f.ChannelID)
	}
	if !f.Since.IsZero() {
		q += ` AND received_at >= ` + a.add(toMillis(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND received_at < ` + a.add(toMillis(f.Until))
	}
	if f.BeforeID > 0 {
		q += ` AND id < ` + a.add(f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q += ` ORDER BY id DESC` + s.dialect.limitOffset(&a, limit, 0)
	return queryAll(ctx, s, "list alarms", q, a, func(sc scanner) (model.Alarm, error) {
		var al model.Alarm
		var occ, rec int64
		err := sc.Scan(&al.ID, &al.Source, &al.DeviceCode, &al.ChannelCode, &al.ChannelID, &al.Priority, &al.Method,
			&al.Type, &al.Description, &al.Lat, &al.Lng, &occ, &rec, &al.State)
		al.OccurredAt, al.ReceivedAt = fromMillis(occ), fromMillis(rec)
		return al, err
	})
}

// SetCatalogStatus applies a device's catalog event (ON, OFF, VLOST,
// DEFECT, DEL) to one of its channels, unless media is flowing (the hub
// knows better then). It returns ErrNotFound when no channel of the device
// has the code.
func (s *Store) SetCatalogStatus(ctx context.Context, deviceID int64, code, event string, at time.Time) error {
	status, reason := catalogChannelStatus(event)
	res, err := s.w.ExecContext(ctx, `
UPDATE channels SET catalog_status = $3,
	status = CASE WHEN status IN ('online', 'connecting') THEN status ELSE $4 END,
	reason = CASE WHEN status IN ('online', 'connecting') THEN reason ELSE $5 END,
	status_changed_at = CASE WHEN status IN ('online', 'connecting') OR status = $4 THEN status_changed_at ELSE $6 END
WHERE code = $1 AND device_id = $2`, code, deviceID, event, string(status), reason, toMillis(at))
	if err == nil {
		err = affectedOne(res)
	}
	if err != nil {
		return fmt.Errorf("store: set catalog status of %s: %w", code, err)
	}
	return nil
}
