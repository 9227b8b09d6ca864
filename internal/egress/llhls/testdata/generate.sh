#!/bin/sh
# Regenerates the test clips (about 90 KB in all): 160x120, 30 fps, 2 s,
# one IDR a second with the parameter sets repeated in each, no B-frames;
# and 2 s of a 440 Hz tone as ADTS AAC-LC, 48 kHz mono.
set -e
cd "$(dirname "$0")"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=160x120:rate=30 -t 2 \
	-c:v libx264 -profile:v baseline -preset veryfast -tune zerolatency \
	-g 30 -keyint_min 30 -sc_threshold 0 -x264-params repeat-headers=1 -b:v 150k \
	-bsf:v h264_metadata=aud=remove -f h264 clip.h264
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=160x120:rate=30 -t 2 \
	-c:v libx265 -preset veryfast -g 30 -keyint_min 30 -sc_threshold 0 \
	-x265-params "repeat-headers=1:bframes=0:log-level=error" -b:v 150k -f hevc clip.h265
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 2 \
	-ac 1 -c:a aac -b:a 32k -f adts tone.aac
