package sdp

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNoAddress means an answer names no c= address for its media.
var ErrNoAddress = errors.New("no c= address")

// offerFormats are the payload types a platform offers for video, in the
// order of the GB/T 28181-2016 Annex F examples: "m=video 6000 RTP/AVP 96
// 98 97".
func offerFormats() []Format {
	return []Format{
		{PT: PTPS, Name: "PS", Rate: 90000},
		{PT: PTH264, Name: "H264", Rate: 90000},
		{PT: PTMPEG4, Name: "MPEG4", Rate: 90000},
	}
}

// LiveOffer builds the SDP of a platform's INVITE for live video
// (s=Play, t=0 0, a=recvonly; GB/T 28181-2016 §9.2.2). platformID goes in
// o= (the offerer, as in the standard's examples); ip and port are where
// the platform receives the media. channelID is not written: a Play offer
// has no u=, the channel is in the Request-URI. With tcp the transport is
// TCP/RTP/AVP with a=setup:<setup> (default "passive": the platform listens
// and the device connects) and a=connection:new (RFC 4145, RFC 4571).
// ssrc is the y= value, usually from NewSSRC(true, ...).
func LiveOffer(platformID, channelID, ip string, port int, tcp bool, setup string, ssrc string) *Session {
	_ = channelID
	return offer(NamePlay, platformID, ip, port, tcp, setup, ssrc)
}

// PlaybackOffer builds the SDP of a platform's INVITE for recorded video
// (GB/T 28181-2016 §9.8, §9.9): s=Playback when speed is 0, else
// s=Download with a=downloadspeed:<speed>; u=<channelID>:0; t=<start>
// <end> in Unix seconds. The other arguments are as for LiveOffer; ssrc is
// usually from NewSSRC(false, ...).
func PlaybackOffer(platformID, channelID, ip string, port int, tcp bool, setup string, ssrc string, start, end time.Time, speed int) *Session {
	name := NamePlayback
	if speed > 0 {
		name = NameDownload
	}
	s := offer(name, platformID, ip, port, tcp, setup, ssrc)
	s.URI = channelID + ":0"
	s.Start, s.Stop = start.Unix(), end.Unix()
	if speed > 0 {
		s.Media[0].DownloadSpeed = speed
	}
	return s
}

func offer(name, platformID, ip string, port int, tcp bool, setup, ssrc string) *Session {
	m := Media{
		Kind:      "video",
		Port:      port,
		Transport: TransportUDP,
		Formats:   offerFormats(),
		Direction: "recvonly",
	}
	if tcp {
		m.Transport = TransportTCP
		if setup == "" {
			setup = "passive"
		}
		m.Setup = setup
		m.Connection = "new"
	}
	return &Session{
		Origin:       platformID,
		SessionName:  name,
		ConnectionIP: ip,
		Media:        []Media{m},
		SSRC:         ssrc,
	}
}

// WithH265 adds H.265 as payload type PTH265 (a=rtpmap:99 H265/90000) to
// the first video section, for GB/T 28181-2022 devices, and returns s.
func (s *Session) WithH265() *Session {
	m := s.Video()
	if m == nil {
		return s
	}
	for _, f := range m.Formats {
		if f.PT == PTH265 {
			return s
		}
	}
	m.Formats = append(m.Formats, Format{PT: PTH265, Name: "H265", Rate: 90000})
	return s
}

// Answer is what a platform needs from a device's answer to start
// receiving media.
type Answer struct {
	Format     Format // the first payload type of the video section: what the device will send
	IP         string // where the device sends from (UDP) or listens (TCP, setup passive)
	Port       int    // 0 with UDP means the device refused the stream (RFC 3264 §6)
	TCP        bool
	Setup      string // the device's role: "active" (it connects) or "passive" (it listens)
	Connection string
	SSRC       string // y= as written; "" when absent
	// SSRCValue is SSRC as the 32-bit RTP SSRC; SSRCErr says why it could
	// not be read (absent, not 10 digits, above 4294967295, ...).
	SSRCValue uint32
	SSRCErr   error
	FileSize  int64 // a=filesize of a Download answer; 0 when absent
}

// ReadAnswer reads the media parameters from a device's answer. It fails
// with ErrNoMedia when there is no m= section and ErrNoAddress when neither
// the section nor the session has a c= address.
func ReadAnswer(s *Session) (Answer, error) {
	m := s.Video()
	if m == nil {
		return Answer{}, fmt.Errorf("sdp: read answer: %w", ErrNoMedia)
	}
	a := Answer{
		IP:         m.ConnectionIP,
		Port:       m.Port,
		TCP:        m.TCP(),
		Setup:      m.Setup,
		Connection: m.Connection,
		SSRC:       s.SSRC,
	}
	if a.IP == "" {
		a.IP = s.ConnectionIP
	}
	if len(m.Formats) > 0 {
		a.Format = m.Formats[0]
	}
	if v, ok := m.Attr("filesize"); ok {
		a.FileSize, _ = strconv.ParseInt(v, 10, 64)
	}
	if s.SSRC == "" {
		a.SSRCErr = errors.New("sdp: answer has no y= line")
	} else {
		_, _, _, a.SSRCValue, a.SSRCErr = ParseSSRC(s.SSRC)
	}
	if a.IP == "" {
		return a, fmt.Errorf("sdp: read answer: %w", ErrNoAddress)
	}
	return a, nil
}

// Check compares a device's answer with the platform's offer and lists
// what would keep media from arriving or being recognised: a different
// SSRC, a payload type that was not offered, a different transport, a TCP
// setup that is not the complement of the offer's, a refused stream. It
// returns nil when nothing is wrong.
func Check(offer, answer *Session) []string {
	var out []string
	om, am := offer.Video(), answer.Video()
	if om == nil || am == nil {
		return []string{"offer or answer has no m= line"}
	}
	if offer.SSRC != "" && answer.SSRC != "" && offer.SSRC != answer.SSRC {
		out = append(out, fmt.Sprintf("answer y=%s differs from offered y=%s: filter RTP by the answer's SSRC", answer.SSRC, offer.SSRC))
	}
	if answer.SSRC != "" && !isSSRCShape(answer.SSRC) {
		out = append(out, fmt.Sprintf("answer y=%s is not 10 digits", answer.SSRC))
	}
	if om.TCP() != am.TCP() {
		out = append(out, fmt.Sprintf("answer transport %s differs from offered %s", am.Transport, om.Transport))
	}
	if am.TCP() && om.TCP() {
		want := map[string]string{"passive": "active", "active": "passive"}[om.Setup]
		if want != "" && am.Setup != want {
			out = append(out, fmt.Sprintf("answer a=setup:%s, want %s for an offer with a=setup:%s", am.Setup, want, om.Setup))
		}
	}
	if am.Port == 0 && !(am.TCP() && am.Setup == "active") {
		out = append(out, "answer port is 0: the device refused the stream")
	}
	if len(am.Formats) == 0 {
		out = append(out, "answer m= lists no payload type")
	} else {
		pt := am.Formats[0].PT
		offered := false
		for _, f := range om.Formats {
			offered = offered || f.PT == pt
		}
		if !offered {
			out = append(out, fmt.Sprintf("answer payload type %d was not offered", pt))
		}
	}
	if am.ConnectionIP == "" && answer.ConnectionIP == "" {
		out = append(out, "answer has no c= address")
	}
	return out
}
