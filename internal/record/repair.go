package record

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/xueliang/xueliang/internal/model"
	"github.com/xueliang/xueliang/internal/recfile"
)

// RepairIndex is what the start-up scan needs of the segment index.
type RepairIndex interface {
	SegmentIndexed(ctx context.Context, channelID int64, start time.Time, key string) (bool, error)
	AddSegment(ctx context.Context, g *model.Segment) error
}

// RepairReport counts what Repair did.
type RepairReport struct {
	Checked, Indexed, Trimmed, Removed, Unreadable int
	// Failed counts files that could not be repaired (logged each).
	Failed int
}

// Repair indexes the segment files of the recordings folder that the index
// lacks: the segments that were being written when the process died, and
// any whose indexing failed. A file cut short by a crash is trimmed to its
// last whole fragment first (at most a part, a second, is lost); a file
// without a whole fragment is removed; a file that is not a segment is
// logged and left alone.
//
// Only the day folders from since's UTC day on are scanned: a crash leaves
// unindexed only the newest files, and a city's 30 days hold millions.
// Run it before the recorder starts, so that no file is being written.
func Repair(ctx context.Context, dir string, idx RepairIndex, since time.Time, log *slog.Logger) (RepairReport, error) {
	var rep RepairReport
	chans, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("record: repair: %w", err)
	}
	first := since.UTC().Format(time.DateOnly)
	lastLog := time.Now()
	for _, ch := range chans {
		if _, err := strconv.ParseInt(ch.Name(), 10, 64); err != nil || !ch.IsDir() {
			continue
		}
		days, err := os.ReadDir(filepath.Join(dir, ch.Name()))
		if err != nil {
			return rep, fmt.Errorf("record: repair: %w", err)
		}
		for _, day := range days {
			if !day.IsDir() || day.Name() < first {
				continue
			}
			files, err := os.ReadDir(filepath.Join(dir, ch.Name(), day.Name()))
			if err != nil {
				return rep, fmt.Errorf("record: repair: %w", err)
			}
			names := make([]string, 0, len(files))
			for _, f := range files {
				names = append(names, f.Name())
			}
			sort.Strings(names)
			for _, name := range names {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				key := ch.Name() + "/" + day.Name() + "/" + name
				channelID, start, run, err := ParseSegmentKey(key)
				if err != nil {
					continue // not ours (a .tmp, a file an operator put there)
				}
				rep.Checked++
				if time.Since(lastLog) > 5*time.Second {
					log.Info("start-up scan of recordings", "checked", rep.Checked, "indexed", rep.Indexed)
					lastLog = time.Now()
				}
				ok, err := idx.SegmentIndexed(ctx, channelID, start, key)
				if err != nil {
					return rep, err
				}
				if ok {
					continue
				}
				if err := repairFile(ctx, dir, key, channelID, start, run, idx, &rep, log); err != nil {
					if ctx.Err() != nil {
						return rep, ctx.Err()
					}
					// One bad file must not keep the platform from
					// starting: say which and go on.
					rep.Failed++
					log.Error("start-up scan: cannot repair a segment file; fix or remove it", "key", key, "err", err)
				}
			}
		}
	}
	if rep.Indexed+rep.Removed+rep.Unreadable+rep.Failed > 0 {
		log.Info("start-up scan repaired the segment index", "checked", rep.Checked, "indexed", rep.Indexed,
			"trimmed", rep.Trimmed, "removed", rep.Removed, "unreadable", rep.Unreadable, "failed", rep.Failed)
	}
	return rep, nil
}

func repairFile(ctx context.Context, dir, key string, channelID int64, start time.Time, run int64, idx RepairIndex, rep *RepairReport, log *slog.Logger) error {
	path := filepath.Join(dir, filepath.FromSlash(key))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("record: repair %s: %w", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("record: repair %s: %w", key, err)
	}
	sf, err := recfile.Scan(f, st.Size())
	if err != nil {
		rep.Unreadable++
		log.Warn("start-up scan: not a readable segment, left alone", "key", key, "err", err)
		return nil
	}
	if len(sf.Fragments) == 0 {
		rep.Removed++
		f.Close()
		log.Info("start-up scan: removed a segment without a whole part", "key", key)
		return os.Remove(path)
	}
	if sf.ValidSize < st.Size() {
		if err := f.Truncate(sf.ValidSize); err != nil {
			return fmt.Errorf("record: repair %s: trim to %d bytes: %w", key, sf.ValidSize, err)
		}
		rep.Trimmed++
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, sf.ValidSize)); err != nil {
		return fmt.Errorf("record: repair %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record: repair %s: %w", key, err)
	}
	g := model.Segment{ChannelID: channelID, Start: start, End: start.Add(sf.Duration), Bytes: sf.ValidSize,
		Key: key, Location: model.LocationDisk, SHA256: hex.EncodeToString(h.Sum(nil)), Codec: sf.Codecs(), Run: run}
	if err := idx.AddSegment(ctx, &g); err != nil {
		return err
	}
	rep.Indexed++
	return nil
}
