// Package whep serves live channels to WebRTC players with the WebRTC-HTTP
// Egress Protocol (WHEP, draft-ietf-wish-whep-03).
//
// WHEP is not an RFC yet. It reuses the HTTP mechanics of WHIP, RFC 9725,
// almost word for word, so the code cites RFC 9725 where WHEP defers to it and
// the draft where WHEP differs. What is implemented:
//
//   - Session setup (the draft's playback session setup; RFC 9725 §4.2): the
//     player POSTs an SDP offer (Content-Type: application/sdp) to
//     /live/{id}/whep and gets 201 Created with the SDP answer, a Location
//     header naming the session resource and an ETag naming the ICE session. The answer is sent once ICE gathering is
//     complete, so it holds every server candidate and the player needs no
//     trickle ICE (RFC 9725 §4.3).
//   - Session teardown (RFC 9725 §4.2): DELETE on the session resource ends
//     the session. The resource URL holds 128 random bits and is the only
//     credential DELETE needs.
//   - PATCH (RFC 9725 §4.3.1): trickle ICE and ICE restarts are not
//     supported; PATCH answers 405 Method Not Allowed with an Allow header. A
//     player that loses its connection POSTs a new offer.
//   - Authentication (RFC 9725 §4.7): the bearer token is read by
//     Config.Authorize, from the Authorization header or the token query
//     parameter. 401 answers carry WWW-Authenticate: Bearer.
//   - STUN/TURN configuration (RFC 9725 §4.6) is not advertised: the server
//     listens on one UDP port with host candidates (plus Config.AdditionalHosts)
//     and players reach it directly.
//   - Errors are JSON objects {"error":{"code":"...","message":"..."}}: 400
//     bad offer, 401, 403, 404 unknown channel or session, 405, 413 offer too
//     large, 415 not application/sdp, 422 nothing the offer accepts (code
//     h265_not_offered when an H.265 channel meets a player without H.265,
//     which should then fall back to LL-HLS), 503 source unavailable, with the
//     reason. Client mistakes never yield 500.
//
// # Media
//
// Video is H.264 (RFC 6184, packetization-mode=1: single NAL unit and FU-A
// packets), or H.265 (RFC 7798: single NAL unit and FU packets) when the
// channel is H.265 and the offer lists H265. Units are packetized straight from
// the shared media.Unit: a NAL unit that fits in one packet is sent from the
// shared buffer without a copy; FU fragments are assembled in one reused
// buffer. The parameter sets (from media.Track or the latest in-band ones) are
// sent before every keyframe so a decoder can start on any of them. RTP
// timestamps come from media.Unit.PTS.
//
// Audio is G.711 (PCMA, PCMU) passed through when the channel has it and the
// offer accepts it. AAC cannot be carried by WebRTC and this package does not
// transcode: an AAC track is skipped with one log line and the session is
// video only. Opus tracks are skipped the same way for now.
//
// A new session starts with the group of pictures cached by media.Stream so
// the first frame is decodable at once. The cached frames are older than the
// live edge, so they are sent with timestamps 1 ms apart: the player decodes
// through them quickly and the live frames that follow keep their real
// spacing, instead of the whole session lagging by the age of the cache.
// Cached audio is not sent. A cache larger than maxBacklogBytes is skipped
// and the session waits for the next live keyframe instead.
//
// Keyframe requests (RTCP PLI, RFC 4585 §6.3.1, and FIR, RFC 5104 §4.3.1)
// cannot be forwarded to the camera here; they are counted and reported to
// Config.OnKeyframeRequest.
//
// # Lifecycle
//
// NewServer checks the configuration, Start binds the shared ICE UDP port,
// Close ends every session and stops every goroutine the Server started. A
// session ends, releasing its Hub lease exactly once, on DELETE, when the
// peer connection fails or closes, when it does not connect within
// Config.SessionTimeout, when the stream ends, or on Close.
package whep
