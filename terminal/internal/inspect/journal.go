package inspect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/liggare/liggare/terminal/internal/agent"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults of JournalOptions.
const (
	// DefaultRetain is how long the journal keeps a tap: a day covers the
	// longest open period the ledger counts as present (16 h).
	DefaultRetain = 24 * time.Hour
	// DefaultMaxTaps bounds the journal whatever the clock says: a day of
	// a 2 000-person site tapping four times is 8 000.
	DefaultMaxTaps = 50_000
	// writeQueue is how many taps may wait for the journal's writer.
	writeQueue = 4096
)

// Log keys.
const (
	logErr   = "err"
	logPath  = "path"
	logAside = "aside"
)

var (
	bucketTaps = []byte("taps")
	bucketMeta = []byte("meta")
	keyFormat  = []byte("format")
)

const (
	journalFormat = 1
	entryV1       = 1
)

// JournalOptions configures OpenJournal. The zero value is usable.
type JournalOptions struct {
	Retain  time.Duration
	MaxTaps int
	// Modes and Rules decide the direction Add reports.
	Modes  Modes
	Rules  Rules
	Logger *slog.Logger
}

// Journal is the terminal's own short record of the taps it recorded: the
// last Retain (24 h) of them, at most MaxTaps, in a bbolt file of its own
// (journal.db beside the outbox). The outbox forgets a tap once the server
// has acknowledged it; the journal keeps it, so that the terminal can say
// who is on site when the network is down (Report) and whether a tap was a
// check-in or a check-out (Add).
//
// The journal is a convenience, not a record: Add never blocks the reader
// (a goroutine owned by the Journal, started by OpenJournal and stopped by
// Close, writes the taps in batches), a tap that cannot be written is kept
// in memory only, and a file bbolt cannot read is moved aside and started
// afresh. The outbox and the server's ledger are the records.
type Journal struct {
	path string
	db   *bolt.DB
	opts JournalOptions
	log  *slog.Logger

	mu   sync.Mutex
	taps []Tap // in derivation order, within Retain; at most MaxTaps
	// onDisk counts the file's entries (the writer's alone).
	onDisk int

	writes    chan Tap
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// OpenJournal opens the journal at path, creating it if needed.
func OpenJournal(path string, opts JournalOptions) (*Journal, error) {
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.MaxTaps <= 0 {
		opts.MaxTaps = DefaultMaxTaps
	}
	if opts.Rules == (Rules{}) {
		opts.Rules = DefaultRules
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	bopts := &bolt.Options{Timeout: time.Second}
	db, err := bolt.Open(path, 0o600, bopts)
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("inspect: open journal %s: %w (moving it aside failed: %v)", path, err, rerr)
		}
		opts.Logger.Error("journal_moved_aside", logPath, path, logAside, aside, logErr, err)
		db, err = bolt.Open(path, 0o600, bopts)
	}
	if err != nil {
		return nil, fmt.Errorf("inspect: open journal %s: %w", path, err)
	}
	j := &Journal{path: path, db: db, opts: opts, log: opts.Logger,
		writes: make(chan Tap, writeQueue), quit: make(chan struct{}), done: make(chan struct{})}
	if err := db.Update(j.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("inspect: open journal %s: %w", path, err)
	}
	go j.writer()
	return j, nil
}

// load reads the taps within Retain, creating the buckets of a new file and
// emptying one of another format.
func (j *Journal) load(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keyFormat); v != nil && (len(v) != 8 || binary.BigEndian.Uint64(v) != journalFormat) {
		j.log.Warn("journal_format_reset", logPath, j.path)
		if err := tx.DeleteBucket(bucketTaps); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
	}
	if err := meta.Put(keyFormat, u64(journalFormat)); err != nil {
		return err
	}
	b, err := tx.CreateBucketIfNotExists(bucketTaps)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-j.opts.Retain)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		t, err := decodeTap(k, v)
		if err != nil || t.At.Before(cutoff) {
			// Old or unreadable: the writer prunes it.
			j.onDisk++
			continue
		}
		j.onDisk++
		j.taps = append(j.taps, t)
	}
	if len(j.taps) > j.opts.MaxTaps {
		j.taps = j.taps[len(j.taps)-j.opts.MaxTaps:]
	}
	return nil
}

// Add records a tap the agent recorded and returns its direction as the
// terminal derives it (see Derive). A tap that was not recorded is not a
// tap: it is not kept, and its direction is DirNone. Add does not wait for
// the disk.
func (j *Journal) Add(o agent.Observation) Direction {
	if !o.Feedback.Recorded {
		return DirNone
	}
	t := Tap{Epoch: o.Epoch, Seq: o.Feedback.Seq, CardID: o.Read.CardID, Reader: o.Read.Reader, At: o.At,
		Answer: o.Feedback.Answer, Name: o.Feedback.Name, Employer: o.Feedback.Employer}
	j.mu.Lock()
	j.insert(t)
	var mine []Tap
	for _, x := range j.taps {
		if x.CardID == t.CardID {
			mine = append(mine, x)
		}
	}
	j.mu.Unlock()
	_, dirs := Derive(mine, j.opts.Modes, j.opts.Rules, t.At)
	select {
	case j.writes <- t:
	default:
		j.log.Warn("journal_queue_full") // kept in memory; the outbox has the tap
	}
	return dirs[TapKey{t.Epoch, t.Seq}]
}

// insert puts t in order and drops what is past Retain or MaxTaps. j.mu is
// held.
func (j *Journal) insert(t Tap) {
	i, _ := slices.BinarySearchFunc(j.taps, t, func(a, b Tap) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.Epoch != b.Epoch {
			return compareInt(a.Epoch, b.Epoch)
		}
		return compareInt(a.Seq, b.Seq)
	})
	j.taps = slices.Insert(j.taps, i, t)
	cutoff := time.Now().Add(-j.opts.Retain)
	drop := 0
	for drop < len(j.taps) && j.taps[drop].At.Before(cutoff) {
		drop++
	}
	drop = max(drop, len(j.taps)-j.opts.MaxTaps)
	if drop > 0 {
		j.taps = slices.Delete(j.taps, 0, drop)
	}
}

func compareInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Taps returns a copy of the taps the journal holds, in time order.
func (j *Journal) Taps() []Tap {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.taps)
}

// Path returns the journal's file.
func (j *Journal) Path() string { return j.path }

// Close writes the taps still queued and closes the file.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		close(j.quit)
		<-j.done
		if err := j.db.Close(); err != nil {
			j.closeErr = fmt.Errorf("inspect: close journal: %w", err)
		}
	})
	return j.closeErr
}

// writer writes queued taps, a batch per transaction, and prunes the file.
func (j *Journal) writer() {
	defer close(j.done)
	for {
		var batch []Tap
		select {
		case t := <-j.writes:
			batch = append(batch, t)
		case <-j.quit:
			// Write what is queued, then stop.
			for len(j.writes) > 0 {
				batch = append(batch, <-j.writes)
			}
			if len(batch) > 0 {
				j.write(batch)
			}
			return
		}
	more:
		for len(batch) < 1024 {
			select {
			case t := <-j.writes:
				batch = append(batch, t)
			default:
				break more
			}
		}
		j.write(batch)
	}
}

func (j *Journal) write(batch []Tap) {
	cutoff := time.Now().Add(-j.opts.Retain)
	onDisk := j.onDisk
	err := j.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTaps)
		n := onDisk
		for _, t := range batch {
			v, err := encodeTap(t)
			if err != nil {
				return err
			}
			k := tapKey(t)
			if b.Get(k) == nil {
				n++
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if n <= j.opts.MaxTaps && !keyTime(k).Before(cutoff) {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n--
		}
		onDisk = n
		return nil
	})
	if err != nil {
		j.log.Error("journal_write_failed", logPath, j.path, logErr, err)
		return
	}
	j.onDisk = onDisk
}

// A key is the tap's time (Unix microseconds), epoch and sequence, 8 bytes
// each big-endian, so the file is in derivation order.
func tapKey(t Tap) []byte {
	k := make([]byte, 24)
	binary.BigEndian.PutUint64(k, uint64(t.At.UnixMicro())^(1<<63))
	binary.BigEndian.PutUint64(k[8:], uint64(t.Epoch))
	binary.BigEndian.PutUint64(k[16:], t.Seq)
	return k
}

func keyTime(k []byte) time.Time {
	if len(k) != 24 {
		return time.Time{}
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(k) ^ (1 << 63)))
}

type storedTap struct {
	CardID   string `json:"card"`
	Reader   string `json:"reader,omitempty"`
	Answer   string `json:"answer,omitempty"`
	Name     string `json:"name,omitempty"`
	Employer string `json:"employer,omitempty"`
}

func encodeTap(t Tap) ([]byte, error) {
	body, err := json.Marshal(storedTap{CardID: t.CardID, Reader: t.Reader, Answer: t.Answer, Name: t.Name, Employer: t.Employer})
	if err != nil {
		return nil, err
	}
	return append([]byte{entryV1}, body...), nil
}

func decodeTap(k, v []byte) (Tap, error) {
	if len(k) != 24 || len(v) < 2 || v[0] != entryV1 {
		return Tap{}, errors.New("inspect: journal entry of an unknown form")
	}
	var s storedTap
	if err := json.Unmarshal(v[1:], &s); err != nil {
		return Tap{}, fmt.Errorf("inspect: journal entry: %w", err)
	}
	return Tap{At: keyTime(k), Epoch: int64(binary.BigEndian.Uint64(k[8:])), Seq: binary.BigEndian.Uint64(k[16:]),
		CardID: s.CardID, Reader: s.Reader, Answer: s.Answer, Name: s.Name, Employer: s.Employer}, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
