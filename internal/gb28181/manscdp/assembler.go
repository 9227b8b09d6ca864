package manscdp

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Collection is what an Assembler gathered for one (CmdType, DeviceID, SN).
// Exactly one of Catalog and Records is used, by CmdType.
type Collection struct {
	CmdType  string // CmdCatalog or CmdRecordInfo
	DeviceID string
	SN       int
	SumNum   int // the largest SumNum any message claimed
	Catalog  []CatalogItem
	Records  []RecordItem
	// Complete is true when SumNum distinct items arrived. Missing is
	// SumNum minus the distinct items that arrived (0 when complete).
	Complete bool
	Missing  int
	// Messages counts the messages folded in; Duplicates the items dropped
	// because an equal one had arrived (catalog: same DeviceID, the later
	// item replaces the earlier; records: same DeviceID, StartTime and
	// EndTime, the earlier is kept).
	Messages   int
	Duplicates int
	First      time.Time // when the first message arrived
	Last       time.Time // when the latest message arrived
}

type collectionKey struct {
	cmd      string
	deviceID string
	sn       int
}

type recordKey struct{ deviceID, start, end string }

type collection struct {
	Collection
	catalogIdx map[string]int    // DeviceID -> index in Catalog
	recordIdx  map[recordKey]int // -> index in Records
}

// AssemblerOptions configures an Assembler. The zero value is usable.
type AssemblerOptions struct {
	// MaxPending bounds the collections held at once (default 4096); Add
	// fails with ErrTooManyPending beyond it.
	MaxPending int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Assembler joins the messages of multi-message Catalog and RecordInfo
// responses (GB/T 28181 lets a device split a list over several MESSAGEs
// with the SN of the query and the total in SumNum). It keys collections by
// (CmdType, DeviceID, SN), accepts messages in any order, drops duplicate
// items, and hands back a Collection when SumNum distinct items have
// arrived. For devices that never send the rest, Finish and Expire return
// what arrived with Complete false and Missing set.
//
// An Assembler is safe for concurrent use by multiple goroutines. It starts
// no goroutines: the owner calls Expire periodically (e.g. from the ticker of
// the goroutine that sent the queries).
type Assembler struct {
	maxPending int
	now        func() time.Time

	mu      sync.Mutex                    // guards pending
	pending map[collectionKey]*collection // unfinished collections
}

// NewAssembler returns an empty Assembler.
func NewAssembler(opts AssemblerOptions) *Assembler {
	a := &Assembler{maxPending: opts.MaxPending, now: opts.Now, pending: make(map[collectionKey]*collection)}
	if a.maxPending <= 0 {
		a.maxPending = 4096
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// Add folds a Response Catalog, Notify Catalog or Response RecordInfo
// message into its collection. It returns the collection and true when the
// message completed it (the collection is then forgotten), or nil and false
// while items are outstanding. A message that holds the whole list (or
// SumNum 0) completes at once.
func (a *Assembler) Add(m *Message) (*Collection, bool, error) {
	var (
		sumNum  int
		catalog []CatalogItem
		records []RecordItem
	)
	switch m.CmdType {
	case CmdCatalog:
		c, err := m.Catalog()
		if err != nil {
			return nil, false, err
		}
		sumNum, catalog = c.SumNum, c.Items
	case CmdRecordInfo:
		r, err := m.RecordInfo()
		if err != nil {
			return nil, false, err
		}
		sumNum, records = r.SumNum, r.Items
	default:
		return nil, false, fmt.Errorf("%w: assembler takes Catalog or RecordInfo, not %s", ErrWrongCmdType, m.CmdType)
	}
	k := collectionKey{cmd: m.CmdType, deviceID: m.DeviceID, sn: m.SN}
	now := a.now()

	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.pending[k]
	if c == nil {
		if len(a.pending) >= a.maxPending {
			return nil, false, fmt.Errorf("%w (%d)", ErrTooManyPending, a.maxPending)
		}
		c = &collection{
			Collection: Collection{CmdType: m.CmdType, DeviceID: m.DeviceID, SN: m.SN, First: now},
			catalogIdx: make(map[string]int),
			recordIdx:  make(map[recordKey]int),
		}
		a.pending[k] = c
	}
	c.Messages++
	c.Last = now
	c.SumNum = max(c.SumNum, sumNum)
	for _, it := range catalog {
		if i, ok := c.catalogIdx[it.DeviceID]; ok {
			c.Catalog[i] = it
			c.Duplicates++
			continue
		}
		c.catalogIdx[it.DeviceID] = len(c.Catalog)
		c.Catalog = append(c.Catalog, it)
	}
	for _, it := range records {
		rk := recordKey{it.DeviceID, it.StartTime, it.EndTime}
		if _, ok := c.recordIdx[rk]; ok {
			c.Duplicates++
			continue
		}
		c.recordIdx[rk] = len(c.Records)
		c.Records = append(c.Records, it)
	}
	if c.countLocked() < c.SumNum {
		return nil, false, nil
	}
	return a.finishLocked(k, c), true, nil
}

func (c *collection) countLocked() int { return len(c.Catalog) + len(c.Records) }

// finishLocked removes c from pending and returns its result. a.mu is held.
func (a *Assembler) finishLocked(k collectionKey, c *collection) *Collection {
	delete(a.pending, k)
	res := c.Collection
	res.Missing = max(0, res.SumNum-c.countLocked())
	res.Complete = res.Missing == 0
	return &res
}

// Finish ends the collection of (cmdType, deviceID, sn) and returns what
// arrived, or false when there is none (never started, or already complete).
func (a *Assembler) Finish(cmdType, deviceID string, sn int) (*Collection, bool) {
	k := collectionKey{cmd: cmdType, deviceID: deviceID, sn: sn}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.pending[k]
	if c == nil {
		return nil, false
	}
	return a.finishLocked(k, c), true
}

// Expire ends every collection whose latest message is older than idle and
// returns them, oldest first by First.
func (a *Assembler) Expire(idle time.Duration) []*Collection {
	cutoff := a.now().Add(-idle)
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*Collection
	for k, c := range a.pending {
		if c.Last.Before(cutoff) {
			out = append(out, a.finishLocked(k, c))
		}
	}
	sortByFirst(out)
	return out
}

// Pending returns the number of unfinished collections.
func (a *Assembler) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

func sortByFirst(cs []*Collection) {
	slices.SortFunc(cs, func(x, y *Collection) int { return x.First.Compare(y.First) })
}
