#!/usr/bin/env bash
# gen-clips.sh regenerates the camera simulator's clips (internal/sim/clips).
#
#   scripts/gen-clips.sh               write the embedded clips to internal/sim/clips/
#   scripts/gen-clips.sh clips OUTDIR  write the embedded clips to OUTDIR
#   scripts/gen-clips.sh bench OUTDIR  write bench-720p.h264 (1280x720, 15 fps, 2 Mbit/s, 10 s)
#
# Every video clip is a raw Annex-B elementary stream: 640x360, 15 fps constant,
# no B-frames, an IDR every 30 frames (scenecut off, so GOPs are fixed), an access
# unit delimiter before each picture and the parameter sets repeated before each
# IDR. The frame rate is read back from the SPS VUI timing info by internal/sim;
# clips without timing info are played at 15 fps. Audio is AAC-LC in ADTS.
set -euo pipefail

mode=${1:-clips}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/internal/sim/clips}
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
[ -f "$font" ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]}" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$out"
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }

fps=15
gop=30
# overlay LABEL: the clip label at the top, a running clock and frame number at the bottom.
overlay() {
	local box="box=1:boxcolor=black@0.6:boxborderw=6:fontcolor=white:fontfile=$font"
	printf "drawtext=%s:fontsize=22:x=12:y=12:text='%s',drawtext=%s:fontsize=26:x=12:y=h-th-14:text='%%{pts\\\\:hms}  #%%{frame_num}'" \
		"$box" "$1" "$box"
}
x264() { # x264 OUT BITRATE
	local out=$1 rate=$2
	ff -f lavfi -i "$src" -frames:v "$frames" -r "$fps" -pix_fmt yuv420p \
		-c:v libx264 -profile:v main -preset medium -bf 0 -g "$gop" -keyint_min "$gop" -sc_threshold 0 \
		-b:v "$rate" -maxrate "$rate" -bufsize "$rate" \
		-x264-params "scenecut=0:keyint=$gop:min-keyint=$gop:repeat-headers=1:force-cfr=1${x264extra:-}" \
		-bsf:v h264_metadata=aud=insert -f h264 "$out"
}

case $mode in
clips)
	frames=60 # 4 s, two GOPs
	size=640x360

	src="testsrc2=size=$size:rate=$fps,$(overlay 'XUELIANG SIM - testsrc')"
	x264 "$out/testsrc.h264" 420k

	src="smptebars=size=$size:rate=$fps[b];color=c=white:size=48x48:rate=$fps[d];[b][d]overlay=x='mod(t*200,W-48)':y='H/2-24+80*sin(t*3)',noise=alls=6:allf=t,$(overlay 'XUELIANG SIM - bars')"
	x264 "$out/bars.h264" 380k

	src="mandelbrot=size=$size:rate=$fps:end_pts=200,$(overlay 'XUELIANG SIM - mandelbrot')"
	x264 "$out/mandelbrot.h264" 420k

	# a street: verge, asphalt with dashed lanes and a zebra crossing, pavement, three
	# cars at different speeds and a little sensor noise.
	road="color=c=0x4a4a4a:size=$size:rate=$fps,drawbox=x=0:y=0:w=iw:h=90:color=0x6b8e5a:t=fill"
	road+=",drawbox=x=0:y=270:w=iw:h=90:color=0x8a8a80:t=fill,drawbox=x=0:y=177:w=iw:h=6:color=yellow:t=fill"
	for x in $(seq 0 80 600); do road+=",drawbox=x=$x:y=133:w=44:h=4:color=white:t=fill,drawbox=x=$x:y=223:w=44:h=4:color=white:t=fill"; done
	for y in $(seq 96 24 250); do road+=",drawbox=x=470:y=$y:w=60:h=12:color=white@0.9:t=fill"; done
	src="$road[road];color=c=red:size=90x36:rate=$fps[c1];color=c=0x2060ff:size=110x40:rate=$fps[c2]"
	src+=";color=c=white:size=80x34:rate=$fps[c3];[road][c1]overlay=x='mod(t*160,W+90)-90':y=97[r1]"
	src+=";[r1][c2]overlay=x='W-mod(t*110,W+110)':y=230[r2];[r2][c3]overlay=x='mod(40+t*260,W+80)-80':y=140"
	src+=",noise=alls=8:allf=t,$(overlay 'XUELIANG SIM - street')"
	x264 "$out/street.h264" 380k

	src="testsrc2=size=$size:rate=$fps,hue=h=90,$(overlay 'XUELIANG SIM - h265')"
	ff -f lavfi -i "$src" -frames:v "$frames" -r "$fps" -pix_fmt yuv420p \
		-c:v libx265 -profile:v main -preset fast -b:v 300k \
		-x265-params "log-level=error:keyint=$gop:min-keyint=$gop:scenecut=0:bframes=0:open-gop=0:repeat-headers=1:aud=1:vbv-maxrate=300:vbv-bufsize=300" \
		-f hevc "$out/testsrc.h265"

	# AAC-LC, mono, 16 kHz: a 880 Hz beep of 200 ms once a second, 4 s.
	ff -f lavfi -i "aevalsrc='0.4*sin(2*PI*880*t)*lt(mod(t,1),0.2)':s=16000:d=4" \
		-ac 1 -c:a aac -profile:a aac_low -b:a 24k -f adts "$out/beep.aac"
	;;
bench)
	[ $# -ge 2 ] || { echo "usage: $0 bench OUTDIR" >&2; exit 2; }
	frames=150 # 10 s
	# noise keeps the encoder busy enough to spend its whole 2 Mbit/s; nal-hrd=cbr pads the rest.
	src="testsrc2=size=1280x720:rate=$fps,noise=alls=24:allf=t,$(overlay 'XUELIANG SIM - bench 720p')"
	x264extra=":nal-hrd=cbr" x264 "$out/bench-720p.h264" 2M
	;;
*)
	echo "usage: $0 [clips [OUTDIR] | bench OUTDIR]" >&2
	exit 2
	;;
esac
ls -l "$out" >&2
