// Package web embeds the browser console and serves it.
//
// This is the minimal demo page of the first slice: a channel list and a
// live player (LL-HLS through hls.js, or WebRTC through WHEP). The full
// console (web/, Vue 3) replaces it in a later issue. hls.js is vendored as
// static/hls.min.js (version in static/VERSIONS) because command-centre
// networks have no Internet access.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
