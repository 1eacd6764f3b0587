package outbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/liggare/liggare/syncproto"
)

// DefaultMaxPending is the bound on unacknowledged taps when
// Options.MaxPending is zero: weeks of a busy site without network.
const DefaultMaxPending = 500_000

// formatVersion is the layout of the file (buckets and meta keys).
const formatVersion = 1

// openTimeout bounds the wait for bbolt's file lock, so a second process
// gets a clear error instead of hanging.
const openTimeout = time.Second

// maxGroup bounds the append requests committed in one transaction, so one
// transaction stays a reasonable size under a flood.
const maxGroup = 4096

var (
	bucketMeta = []byte("meta")
	bucketTaps = []byte("taps")

	keyFormat        = []byte("format")
	keyEpoch         = []byte("epoch")
	keyLastSeq       = []byte("last_seq")
	keyAckedThrough  = []byte("acked_through")
	keyCreatedMicros = []byte("created_micros")
)

// Log keys.
const (
	logPath         = "path"
	logEpoch        = "epoch"
	logLastSeq      = "last_seq"
	logAckedThrough = "acked_through"
	logDepth        = "depth"
	logMaxPending   = "max_pending"
	logThrough      = "through"
	logErr          = "err"
)

var (
	// ErrFull is returned by Append when the taps would take the outbox
	// beyond Options.MaxPending unacknowledged taps. The taps are refused,
	// nothing already stored is dropped; the kiosk raises "outbox_full".
	// The sentinels carry no "outbox:" prefix because they are always
	// returned wrapped in one.
	ErrFull = errors.New("outbox full")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("outbox closed")
	// ErrCorrupt is returned by Open when an existing file lacks its meta or
	// its contents contradict it, and by reads that meet an undecodable
	// record. The file is left as it is for a person to look at.
	ErrCorrupt = errors.New("outbox file corrupt")
	// ErrAckBeyondLast is returned by Ack for a cursor beyond LastSeq.
	ErrAckBeyondLast = errors.New("acknowledged sequence beyond the last one made")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// MaxPending bounds the unacknowledged taps; DefaultMaxPending if zero.
	MaxPending int
	// Logger receives the outbox's few log lines; nil discards them.
	Logger *slog.Logger

	// maxFileBytes, if positive, makes bbolt refuse to grow the file beyond
	// it: tests use it to produce a real "disk full" write error.
	maxFileBytes int
}

// Stats describes the outbox at one moment. It is kept in memory and updated
// after every commit, so reading it costs no transaction.
type Stats struct {
	// Depth is the number of taps not yet acknowledged.
	Depth uint64
	// LastSeq is the highest sequence ever allocated in this epoch, 0 if none.
	LastSeq uint64
	// AckedThrough is the highest sequence acknowledged (and deleted).
	AckedThrough uint64
	// OldestWallMicros is Clock.WallMicros of the oldest unacknowledged tap,
	// or 0 when the outbox is empty.
	OldestWallMicros int64
	// Full reports that the outbox refuses taps: Depth has reached
	// MaxPending, or an Append was refused with ErrFull and no Ack has made
	// room since.
	Full bool
}

// Outbox is an open outbox file. Its methods are safe for concurrent use.
type Outbox struct {
	db         *bolt.DB
	path       string
	epoch      atomic.Int64 // changes only by Rebase
	maxPending uint64
	log        *slog.Logger
	enc        cbor.EncMode
	dec        cbor.DecMode

	reqs   chan *appendReq // unbuffered: a send succeeds only if the committer took it
	quit   chan struct{}   // closed by Close
	done   chan struct{}   // closed when the committer has returned
	notify chan struct{}   // capacity 1

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// wmu serialises write transactions together with the update of st
	// that follows each, so st always matches the last commit.
	wmu sync.Mutex

	smu     sync.Mutex
	st      Stats
	refused bool // an Append was refused since the last Ack made room

	commits atomic.Uint64 // append transactions committed
}

type appendReq struct {
	taps []syncproto.Tap
	res  chan appendRes // capacity 1: the committer never blocks on it
}

type appendRes struct {
	taps []syncproto.Tap
	err  error
}

// Open opens the outbox file at path, creating it with a new random epoch if
// it does not exist. A file that exists but is not a valid outbox is refused
// with an error (ErrCorrupt for missing or inconsistent meta), never replaced.
// If another process holds the file, Open fails after one second.
func Open(path string, opts Options) (*Outbox, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxPending := opts.MaxPending
	if maxPending == 0 {
		maxPending = DefaultMaxPending
	}
	if maxPending < 0 {
		return nil, fmt.Errorf("outbox: open %s: MaxPending %d is negative", path, maxPending)
	}
	enc, dec := syncproto.StorageModes()
	o := &Outbox{
		path:       path,
		maxPending: uint64(maxPending),
		log:        log,
		enc:        enc,
		dec:        dec,
		reqs:       make(chan *appendReq),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		notify:     make(chan struct{}, 1),
	}

	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := o.create(opts.maxFileBytes); err != nil {
			return nil, fmt.Errorf("outbox: create %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}

	db, err := bolt.Open(path, 0o600, boltOptions(opts.maxFileBytes))
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("outbox: open %s: file is locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	o.db = db
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		var epoch int64
		epoch, o.st, err = o.load(tx)
		o.epoch.Store(epoch)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	o.log.Info("outbox_opened", logPath, path, logEpoch, o.epoch.Load(),
		logLastSeq, o.st.LastSeq, logAckedThrough, o.st.AckedThrough, logDepth, o.st.Depth)

	go o.commitLoop()
	return o, nil
}

func boltOptions(maxFileBytes int) *bolt.Options {
	// NoSync stays false: every commit is fdatasync'd (invariant 1).
	return &bolt.Options{Timeout: openTimeout, MaxSize: maxFileBytes}
}

// create makes a new outbox file at o.path atomically: it is initialised
// under a temporary name and linked into place only once its meta is on
// disk, so the path never names a file without meta.
func (o *Outbox) create(maxFileBytes int) error {
	dir := filepath.Dir(o.path)
	f, err := os.CreateTemp(dir, filepath.Base(o.path)+".new-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return err
	}
	epoch, err := newEpoch()
	if err != nil {
		return err
	}
	db, err := bolt.Open(tmp, 0o600, boltOptions(maxFileBytes))
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketTaps); err != nil {
			return err
		}
		for _, kv := range []struct {
			k []byte
			v uint64
		}{
			{keyFormat, formatVersion},
			{keyEpoch, uint64(epoch)},
			{keyLastSeq, 0},
			{keyAckedThrough, 0},
			{keyCreatedMicros, uint64(time.Now().UnixMicro())},
		} {
			if err := meta.Put(kv.k, u64(kv.v)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, o.path); errors.Is(err, fs.ErrExist) {
		// Another process created the outbox meanwhile: use theirs.
		return nil
	} else if err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	o.log.Info("outbox_created", logPath, o.path, logEpoch, epoch)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// newEpoch draws a random epoch in [1, 2^63-1].
func newEpoch() (int64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("new epoch: %w", err)
		}
		if e := int64(binary.BigEndian.Uint64(b[:]) &^ (1 << 63)); e != 0 {
			return e, nil
		}
	}
}

// load reads meta and scans the taps, returning the epoch and the
// statistics they imply. Every way the file can contradict itself is
// reported as ErrCorrupt.
func (o *Outbox) load(tx *bolt.Tx) (int64, Stats, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, Stats{}, fmt.Errorf("%w: no meta bucket (not an outbox file?)", ErrCorrupt)
	}
	taps := tx.Bucket(bucketTaps)
	if taps == nil {
		return 0, Stats{}, fmt.Errorf("%w: no taps bucket", ErrCorrupt)
	}
	get := func(key []byte) (uint64, error) {
		v := meta.Get(key)
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: meta %q missing or not 8 bytes", ErrCorrupt, key)
		}
		return binary.BigEndian.Uint64(v), nil
	}
	format, err := get(keyFormat)
	if err != nil {
		return 0, Stats{}, err
	}
	if format != formatVersion {
		return 0, Stats{}, fmt.Errorf("file format %d, this agent reads only format %d", format, formatVersion)
	}
	epoch, err := get(keyEpoch)
	if err != nil {
		return 0, Stats{}, err
	}
	if epoch == 0 || epoch > 1<<63-1 {
		return 0, Stats{}, fmt.Errorf("%w: epoch %d out of range", ErrCorrupt, epoch)
	}
	lastSeq, err := get(keyLastSeq)
	if err != nil {
		return 0, Stats{}, err
	}
	acked, err := get(keyAckedThrough)
	if err != nil {
		return 0, Stats{}, err
	}
	if acked > lastSeq {
		return 0, Stats{}, fmt.Errorf("%w: acked_through %d beyond last_seq %d", ErrCorrupt, acked, lastSeq)
	}

	var count, first, last uint64
	var firstVal []byte
	c := taps.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return 0, Stats{}, fmt.Errorf("%w: tap key %x is not 8 bytes", ErrCorrupt, k)
		}
		if count == 0 {
			first, firstVal = binary.BigEndian.Uint64(k), v
		}
		last = binary.BigEndian.Uint64(k)
		count++
	}
	if count != lastSeq-acked || (count > 0 && (first != acked+1 || last != lastSeq)) {
		return 0, Stats{}, fmt.Errorf("%w: %d taps from seq %d to %d, meta says acked_through %d, last_seq %d",
			ErrCorrupt, count, first, last, acked, lastSeq)
	}
	st := Stats{Depth: count, LastSeq: lastSeq, AckedThrough: acked}
	if count > 0 {
		t, err := o.decode(first, firstVal)
		if err != nil {
			return 0, Stats{}, err
		}
		st.OldestWallMicros = t.Clock.WallMicros
	}
	st.Full = st.Depth >= o.maxPending
	return int64(epoch), st, nil
}

// Epoch returns the store epoch: with the terminal id and a tap's Seq, it
// names the tap forever.
func (o *Outbox) Epoch() int64 { return o.epoch.Load() }

// Path returns the file the outbox lives in.
func (o *Outbox) Path() string { return o.path }

// Stats returns the outbox's current statistics without a transaction.
func (o *Outbox) Stats() Stats {
	o.smu.Lock()
	defer o.smu.Unlock()
	return o.st
}

// Notify returns a channel that receives a value after every commit that
// added taps, before the Append calls of that commit return. It has
// capacity 1 and is never closed: a reader that was busy finds one pending
// signal, however many commits happened meanwhile.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Append stores taps, assigning each its Seq in the transaction that stores
// it, and returns copies with Seq set. It returns only once that transaction
// has been committed and fsync'd; only then may the kiosk show success.
// Concurrent calls share one transaction. Append fails with ErrFull when the
// taps would exceed Options.MaxPending, and wraps any write error; in both
// cases none of the taps is stored.
//
// ctx bounds the wait to hand the taps to the committer. Once handed over,
// Append waits for the commit whatever ctx says (a transaction's time), so
// its answer is always the truth about the taps.
func (o *Outbox) Append(ctx context.Context, taps ...syncproto.Tap) ([]syncproto.Tap, error) {
	if o.closed.Load() {
		return nil, fmt.Errorf("outbox: append: %w", ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("outbox: append: %w", err)
	}
	if len(taps) == 0 {
		return []syncproto.Tap{}, nil
	}
	req := &appendReq{
		taps: append([]syncproto.Tap(nil), taps...),
		res:  make(chan appendRes, 1),
	}
	select {
	case o.reqs <- req:
	case <-o.quit:
		return nil, fmt.Errorf("outbox: append: %w", ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("outbox: append: %w", ctx.Err())
	}
	// Once handed over, the taps are committed within a transaction's
	// time: wait for the outcome whatever ctx says, so a caller being shut
	// down never reports as lost a tap that was stored.
	select {
	case res := <-req.res:
		return res.taps, res.err
	case <-o.done:
		select {
		case res := <-req.res:
			return res.taps, res.err
		default:
			return nil, fmt.Errorf("outbox: append: %w", ErrClosed)
		}
	}
}

// commitLoop is the committer goroutine. It takes one request, then every
// request already waiting, and commits them together; a lone request is
// committed at once. After Close it commits what it has already taken.
func (o *Outbox) commitLoop() {
	defer close(o.done)
	group := make([]*appendReq, 0, 64)
	for {
		select {
		case r := <-o.reqs:
			group = append(group[:0], r)
		case <-o.quit:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-o.reqs:
				group = append(group, r)
			default:
				break more
			}
		}
		o.commit(group)
		clear(group)
	}
}

// commit writes the requests of one group in one transaction and answers
// each. Requests that would go beyond MaxPending are refused one by one, so
// a small request is not refused because of a larger one before it.
func (o *Outbox) commit(group []*appendReq) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	st := o.Stats()

	accepted := make([]*appendReq, 0, len(group))
	type refusal struct {
		r   *appendReq
		err error
	}
	var refused []refusal
	depth := st.Depth
	for _, r := range group {
		n := uint64(len(r.taps))
		if depth+n > o.maxPending {
			refused = append(refused, refusal{r, fmt.Errorf("outbox: append %d taps at depth %d, limit %d: %w",
				n, depth, o.maxPending, ErrFull)})
			continue
		}
		depth += n
		accepted = append(accepted, r)
	}
	if len(refused) > 0 {
		// Stats say Full before any caller hears ErrFull.
		o.smu.Lock()
		if !o.refused {
			o.log.Warn("outbox_full", logDepth, depth, logMaxPending, o.maxPending)
		}
		o.refused = true
		o.st.Full = true
		o.smu.Unlock()
		for _, f := range refused {
			f.r.res <- appendRes{err: f.err}
		}
	}
	if len(accepted) == 0 {
		return
	}

	seq := st.LastSeq
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTaps)
		// Keys only ever grow: fill pages completely instead of splitting
		// them half-empty.
		b.FillPercent = 1.0
		for _, r := range accepted {
			for i := range r.taps {
				seq++
				r.taps[i].Seq = seq
				val, err := o.encode(&r.taps[i])
				if err != nil {
					return err
				}
				if err := b.Put(u64(seq), val); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keyLastSeq, u64(seq))
	})
	if err != nil {
		o.log.Error("outbox_append_failed", logErr, err, logLastSeq, st.LastSeq)
		o.resync()
		for _, r := range accepted {
			r.res <- appendRes{err: fmt.Errorf("outbox: append: %w", err)}
		}
		return
	}
	o.commits.Add(1)

	o.smu.Lock()
	if o.st.Depth == 0 {
		o.st.OldestWallMicros = accepted[0].taps[0].Clock.WallMicros
	}
	o.st.Depth = depth
	o.st.LastSeq = seq
	o.st.Full = o.refused || depth >= o.maxPending
	o.smu.Unlock()

	// Signal before answering, so that the signal is there by the time
	// Append returns.
	select {
	case o.notify <- struct{}{}:
	default:
	}
	for _, r := range accepted {
		r.res <- appendRes{taps: r.taps}
	}
}

// resync reloads the statistics from the file after a failed commit.
// Normally bbolt rolled back and nothing changed. But when only the final
// fdatasync failed, the new meta page is already in the shared mapping and
// the next transaction sees the "failed" taps: LastSeq must follow, or the
// next Append would give their sequences to other taps (invariant 3). Such
// taps were reported as not durable and may still be uploaded, which is the
// harmless direction.
func (o *Outbox) resync() {
	var st Stats
	err := o.db.View(func(tx *bolt.Tx) error {
		var err error
		_, st, err = o.load(tx)
		return err
	})
	if err != nil {
		o.log.Error("outbox_resync_failed", logErr, err)
		return
	}
	o.smu.Lock()
	defer o.smu.Unlock()
	if st.LastSeq != o.st.LastSeq {
		o.log.Warn("outbox_failed_commit_visible", logLastSeq, st.LastSeq, logDepth, st.Depth)
	}
	st.Full = st.Full || o.refused
	o.st = st
}

// Pending returns up to max unacknowledged taps with Seq > after, in
// ascending Seq order. The uplink passes the last Seq it has sent to page
// through the backlog.
func (o *Outbox) Pending(after uint64, max int) ([]syncproto.Tap, error) {
	if o.closed.Load() {
		return nil, fmt.Errorf("outbox: pending: %w", ErrClosed)
	}
	if max <= 0 {
		return nil, fmt.Errorf("outbox: pending: max %d is not positive", max)
	}
	if after == ^uint64(0) {
		return []syncproto.Tap{}, nil
	}
	out := make([]syncproto.Tap, 0, min(uint64(max), o.Stats().Depth))
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTaps).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			t, err := o.decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: pending after %d: %w", after, err)
	}
	return out, nil
}

// Ack deletes every tap with Seq <= through, in one transaction, and records
// through as the acknowledged cursor. It returns the number of taps deleted.
// Acknowledging a cursor at or below the current one does nothing. A cursor
// beyond LastSeq is refused with ErrAckBeyondLast and deletes nothing: the
// server holds sequences this outbox never made, so this outbox is an older
// copy of itself (restored from a backup, say) and its pending taps were
// never sent; see Rebase.
func (o *Outbox) Ack(through uint64) (int, error) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	if o.closed.Load() {
		return 0, fmt.Errorf("outbox: ack: %w", ErrClosed)
	}
	st := o.Stats()
	if through <= st.AckedThrough {
		return 0, nil
	}
	if through > st.LastSeq {
		o.log.Error("outbox_ack_beyond_last_seq", logThrough, through, logLastSeq, st.LastSeq, logEpoch, o.epoch.Load())
		return 0, fmt.Errorf("outbox: ack through %d: %w (last seq %d)", through, ErrAckBeyondLast, st.LastSeq)
	}

	var deleted uint64
	var oldest int64
	err := o.db.Update(func(tx *bolt.Tx) error {
		deleted, oldest = 0, 0
		c := tx.Bucket(bucketTaps).Cursor()
		// Walk from the first key, deleting. After a Delete the cursor
		// re-seeks to the next key: Next would skip an element (the
		// deleted one's successor moved into its slot), and First would
		// walk again over every leaf emptied so far, making a large Ack
		// quadratic. Seek descends straight to the current leaf.
		k, v := c.First()
		for k != nil {
			seq := binary.BigEndian.Uint64(k)
			if seq > through {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			deleted++
			k, v = c.Seek(u64(seq + 1))
		}
		if k != nil {
			t, err := o.decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			oldest = t.Clock.WallMicros
		}
		return tx.Bucket(bucketMeta).Put(keyAckedThrough, u64(through))
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: ack through %d: %w", through, err)
	}

	o.smu.Lock()
	o.st.AckedThrough = through
	o.st.Depth -= min(deleted, o.st.Depth)
	o.st.OldestWallMicros = oldest
	o.refused = false
	o.st.Full = o.st.Depth >= o.maxPending
	o.smu.Unlock()
	return int(deleted), nil
}

// Close stops the committer, after it has committed every request it had
// taken, and closes the file. Later calls return the first call's result.
func (o *Outbox) Close() error {
	o.closeOnce.Do(func() {
		o.closed.Store(true)
		close(o.quit)
		<-o.done
		o.wmu.Lock()
		defer o.wmu.Unlock()
		if err := o.db.Close(); err != nil {
			o.closeErr = fmt.Errorf("outbox: close: %w", err)
		}
	})
	return o.closeErr
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// Rebase moves every unacknowledged tap into a new epoch, numbered from 1
// in the order they were made, in one transaction, and returns the new epoch
// and the number of taps moved. The uplink calls it when the server already
// holds sequences of this epoch beyond LastSeq: the file is an older copy of
// itself, and its pending taps would otherwise collide with identities the
// server holds with other content. Their old identities were never
// acknowledged, so nothing the server holds changes meaning. A new epoch is
// what a replaced outbox gets anyway (design invariant 3).
func (o *Outbox) Rebase() (int64, int, error) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	if o.closed.Load() {
		return 0, 0, fmt.Errorf("outbox: rebase: %w", ErrClosed)
	}
	epoch, err := newEpoch()
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: rebase: %w", err)
	}
	var moved uint64
	var oldest int64
	err = o.db.Update(func(tx *bolt.Tx) error {
		moved, oldest = 0, 0
		old := tx.Bucket(bucketTaps)
		var taps []syncproto.Tap
		if err := old.ForEach(func(k, v []byte) error {
			t, err := o.decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			taps = append(taps, t)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketTaps); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketTaps)
		if err != nil {
			return err
		}
		for i := range taps {
			t := taps[i]
			t.Seq = uint64(i + 1)
			rec, err := o.encode(&t)
			if err != nil {
				return err
			}
			if err := b.Put(u64(t.Seq), rec); err != nil {
				return err
			}
			if i == 0 {
				oldest = t.Clock.WallMicros
			}
		}
		moved = uint64(len(taps))
		meta := tx.Bucket(bucketMeta)
		for _, kv := range []struct {
			k []byte
			v uint64
		}{{keyEpoch, uint64(epoch)}, {keyLastSeq, moved}, {keyAckedThrough, 0}} {
			if err := meta.Put(kv.k, u64(kv.v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("outbox: rebase: %w", err)
	}
	prev := o.epoch.Swap(epoch)
	o.smu.Lock()
	o.st.LastSeq, o.st.AckedThrough, o.st.Depth, o.st.OldestWallMicros = moved, 0, moved, oldest
	o.smu.Unlock()
	o.log.Error("outbox_rebased", "old_epoch", prev, logEpoch, epoch, logDepth, moved)
	return epoch, int(moved), nil
}
