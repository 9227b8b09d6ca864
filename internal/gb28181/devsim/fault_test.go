package devsim

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xueliang/xueliang/internal/gb28181/manscdp"
	"github.com/xueliang/xueliang/internal/gb28181/sdp"
	"github.com/xueliang/xueliang/internal/gb28181/sipserver"
)

// TestFaults sets each fault and checks what the platform sees.
func TestFaults(t *testing.T) {
	t.Run("GB2312", func(t *testing.T) {
		t.Parallel()
		p, s, pr, addr := mediaSetup(t, nil)
		dev := s.DeviceIDs()[0]
		catalog := func(sn int) *manscdp.Message {
			pr.send(t, addr, dev, manscdp.CatalogQuery(sn, dev))
			return nextMsg(t, p, manscdp.CmdCatalog, 5*time.Second)
		}
		m := catalog(1)
		if m.DeclaredCharset != "UTF-8" || !utf8.Valid(m.Raw) {
			t.Errorf("default body declares %q", m.DeclaredCharset)
		}
		if err := s.SetFault(dev, Fault{GB2312: true}); err != nil {
			t.Fatal(err)
		}
		m = catalog(2)
		cat, err := m.Catalog()
		if err != nil || m.DeclaredCharset != "GB2312" || m.Charset != manscdp.CharsetGB18030 || utf8.Valid(m.Raw) ||
			!bytes.HasPrefix(m.Raw, []byte(`<?xml version="1.0" encoding="GB2312"?>`)) || cat.Items[0].Name != "模拟通道 1" {
			t.Errorf("GB2312 body: declared %q, read as %q, %+v %v", m.DeclaredCharset, m.Charset, cat, err)
		}
		// GB2312 bytes of 模拟: C4 A3 C4 E2.
		if !bytes.Contains(m.Raw, []byte{0xC4, 0xA3, 0xC4, 0xE2}) {
			t.Errorf("no GB2312 模拟 in %q", m.Raw)
		}
		if f, _ := s.Faults(dev); !f.GB2312 {
			t.Errorf("faults %+v", f)
		}
	})

	t.Run("DropKeepalives", func(t *testing.T) {
		t.Parallel()
		p := startPlatform(t, 100*time.Millisecond)
		s := startSim(t, p, func(c *Config) { c.Devices = 2; c.KeepaliveInterval = 100 * time.Millisecond })
		waitOnline(t, p, s, 5*time.Second)
		dev := s.DeviceIDs()[1]
		if err := s.SetFault(dev, Fault{DropKeepalives: true}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-p.events:
			if e.DeviceID != dev || e.State != sipserver.StateOffline || !strings.Contains(e.Reason, "keepalives missed") {
				t.Errorf("event %+v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the platform did not mark the device offline")
		}
		if err := s.SetFault(dev, Fault{}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-p.events:
			if e.DeviceID != dev || e.State != sipserver.StateOnline {
				t.Errorf("event %+v", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the device did not come back with its keepalives")
		}
	})

	t.Run("WrongSSRC", func(t *testing.T) {
		t.Parallel()
		_, s, pr, addr := mediaSetup(t, func(c *Config) { c.Fault = Fault{WrongSSRC: true} })
		ch := s.Channels(s.DeviceIDs()[0])[0]
		sk := udpSink(t)
		y := ssrc(t, true, 21)
		offer := sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", y)
		c, err := pr.invite(t, addr, ch, offer)
		if err != nil {
			t.Fatal(err)
		}
		// The answer promises the offered SSRC; the media carries another.
		if c.info.SSRC != y || c.info.SSRCErr != nil {
			t.Errorf("answer y=%s (%v), offer y=%s", c.info.SSRC, c.info.SSRCErr, y)
		}
		if problems := sdp.Check(offer, c.answer); len(problems) != 0 {
			t.Errorf("check %q", problems)
		}
		r := newReceiver(t)
		r.until(sk, 5*time.Second, "frames", func() bool { return len(r.frames) >= 2 })
		offered, _ := strconv.ParseUint(y, 10, 32)
		if got := r.frames[0].ssrc; got == uint32(offered) {
			t.Errorf("RTP SSRC %d is the offered one", got)
		}
		c.bye(t)
	})

	t.Run("NoMedia", func(t *testing.T) {
		t.Parallel()
		_, s, pr, addr := mediaSetup(t, nil)
		dev := s.DeviceIDs()[0]
		if err := s.SetFault(dev, Fault{NoMedia: true}); err != nil {
			t.Fatal(err)
		}
		ch := s.Channels(dev)[0]
		sk := udpSink(t)
		c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 22)))
		if err != nil {
			t.Fatal(err)
		}
		if !quiet(sk, 0, time.Second) {
			t.Error("media with NoMedia")
		}
		c.bye(t)
	})

	t.Run("NotPS", func(t *testing.T) {
		t.Parallel()
		_, s, pr, addr := mediaSetup(t, func(c *Config) { c.Fault = Fault{NotPS: true} })
		ch := s.Channels(s.DeviceIDs()[0])[0]
		sk := udpSink(t)
		c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", sk.port, false, "", ssrc(t, true, 23)))
		if err != nil {
			t.Fatal(err)
		}
		r := newReceiver(t)
		r.keepRaw = true
		r.until(sk, 5*time.Second, "packets", func() bool { return r.packets >= 30 })
		if st := r.dm.Stats(); st.Packs != 0 || len(r.frames) != 0 {
			t.Errorf("the PS demuxer found %d packs and %d frames in raw H.264", st.Packs, len(r.frames))
		}
		if !bytes.HasPrefix(r.raw[0], []byte{0, 0, 0, 1}) {
			t.Errorf("first payload starts % x, want an Annex-B start code", r.raw[0][:8])
		}
		c.bye(t)
	})

	t.Run("NoTCPConnect offer passive", func(t *testing.T) {
		t.Parallel()
		_, s, pr, addr := mediaSetup(t, func(c *Config) { c.Fault = Fault{NoTCPConnect: true} })
		ch := s.Channels(s.DeviceIDs()[0])[0]
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, true, "passive", ssrc(t, true, 24)))
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
		if conn, err := ln.Accept(); err == nil {
			conn.Close()
			t.Error("the device connected")
		}
		c.bye(t)
	})

	t.Run("NoTCPConnect offer active", func(t *testing.T) {
		t.Parallel()
		_, s, pr, addr := mediaSetup(t, func(c *Config) { c.Fault = Fault{NoTCPConnect: true} })
		ch := s.Channels(s.DeviceIDs()[0])[0]
		c, err := pr.invite(t, addr, ch, sdp.LiveOffer(platformID, ch, "127.0.0.1", 9, true, "active", ssrc(t, true, 25)))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.DialTimeout("tcp4", net.JoinHostPort(c.info.IP, strconv.Itoa(c.info.Port)), time.Second)
		if err == nil {
			conn.Close()
			t.Error("the device accepted")
		}
		c.bye(t)
	})

	t.Run("unknown device", func(t *testing.T) {
		p := startPlatform(t, 200*time.Millisecond)
		s := startSim(t, p, func(c *Config) { c.Devices = 1; c.ChannelsPerDevice = 2 })
		if err := s.SetFault(s.Channels(s.DeviceIDs()[0])[0], Fault{}); !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("SetFault of a channel: %v", err)
		}
	})
}

// TestMarshalBodyGB2312: characters outside GBK become character
// references, which the platform's parser reads back.
func TestMarshalBodyGB2312(t *testing.T) {
	b, err := marshalBody(&alarmBody{CmdType: cmdAlarm, SN: 1, DeviceID: "x", AlarmDescription: "火情 🔥 𠀀 A&B <1>"}, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manscdp.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := m.Text("AlarmDescription"); d != "火情 🔥 𠀀 A&B <1>" || m.DeclaredCharset != "GB2312" {
		t.Errorf("read back %q declared %q from %q", d, m.DeclaredCharset, b)
	}
}
