package cardcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/liggare/liggare/syncproto"
)

// formatVersion is the layout of the file (buckets and meta keys).
const formatVersion = 1

// entryV1 is the first byte of an entry in format 1.
const entryV1 = 1

// maxEntryBytes bounds an entry read back from disk before it is decoded: a
// CardInfo within the protocol's limits takes well under half of it.
const maxEntryBytes = 8 << 10

// openTimeout bounds the wait for bbolt's file lock, so a second process
// gets a clear error instead of hanging.
const openTimeout = time.Second

var (
	// bucketMeta is not called "meta" like the outbox's, so an outbox file
	// given as a card cache by mistake is refused, not taken over.
	bucketMeta  = []byte("cardmeta")
	bucketCards = [2][]byte{[]byte("cards.0"), []byte("cards.1")}

	keyFormat  = []byte("format")
	keyCursor  = []byte("cursor")
	keyLive    = []byte("live")
	keyStaging = []byte("staging")
	keyLoaded  = []byte("loaded")
)

// Log keys.
const (
	logPath  = "path"
	logAside = "moved_to"
	logErr   = "err"
)

var (
	// ErrCorrupt is returned when the file contradicts itself: a missing
	// bucket, an undecodable entry.
	ErrCorrupt = errors.New("card cache corrupt")
	// ErrNotCache is returned by Open for a bbolt file that holds other
	// buckets than a card cache's (another program's file, the outbox). Such
	// a file is never modified.
	ErrNotCache = errors.New("not a card cache file")
)

// Options configures Open. The zero value is usable.
type Options struct {
	// Logger receives the rare events worth a person's attention (a file
	// moved aside, a format reset). Discarded when nil.
	Logger *slog.Logger
}

// Cache is the terminal's card data in its own bbolt file. Lookup may run
// concurrently with Apply; Apply calls are serialised.
type Cache struct {
	path string
	db   *bolt.DB
	enc  cbor.EncMode
	dec  cbor.DecMode
	log  *slog.Logger

	mu sync.Mutex // serialises Apply; guards st
	st state

	// Published copies of st, for readers that take no lock.
	cursor atomic.Uint64
	n      atomic.Int64
	loaded atomic.Bool
}

// state mirrors the meta bucket, plus the entry counts of the two buckets.
type state struct {
	cursor  uint64
	live    int // index into bucketCards of the bucket Lookup reads
	staging bool
	loaded  bool
	n       int // entries in the live bucket
	sn      int // entries in the staging bucket, while staging
}

// Open opens the card cache at path, creating an empty one (cursor 0) if it
// does not exist. A file bbolt cannot read is renamed to path+".corrupt" and
// replaced by an empty cache; a cache of another format version is emptied.
// A bbolt file that is not a card cache is refused with ErrNotCache. If
// another process holds the file, Open fails after one second.
func Open(path string, opts Options) (*Cache, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	enc, dec := syncproto.StorageModes()
	// NoSync stays false: an update is on disk before it is acknowledged.
	bopts := &bolt.Options{Timeout: openTimeout}
	db, err := bolt.Open(path, 0o600, bopts)
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		// The data can always be fetched again; a kiosk that does not start
		// records no taps. Keep the bytes for a person to look at.
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("cardcache: open %s: %w (moving it aside failed: %v)", path, err, rerr)
		}
		log.Error("card_cache_moved_aside", logPath, path, logAside, aside, logErr, err)
		db, err = bolt.Open(path, 0o600, bopts)
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("cardcache: open %s: file is locked by another process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cardcache: open %s: %w", path, err)
	}
	c := &Cache{path: path, db: db, enc: enc, dec: dec, log: log}
	if err := db.Update(c.load); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cardcache: open %s: %w", path, err)
	}
	c.publish()
	return c, nil
}

// load reads the meta bucket into c.st, initialising a new file and
// emptying one whose meta is of another format or unreadable.
func (c *Cache) load(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := false
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { foreign = true; return nil })
		if foreign {
			return ErrNotCache
		}
		return c.reset(tx)
	}
	st, err := readState(tx, meta)
	if err != nil {
		c.log.Warn("card_cache_reset", logPath, c.path, logErr, err)
		return c.reset(tx)
	}
	c.st = st
	return nil
}

// readState reads and checks the meta bucket. A format other than
// formatVersion is an error too: the caller starts over.
func readState(tx *bolt.Tx, meta *bolt.Bucket) (state, error) {
	var st state
	get := func(key []byte) (uint64, error) {
		v := meta.Get(key)
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: meta %q missing or not 8 bytes", ErrCorrupt, key)
		}
		return binary.BigEndian.Uint64(v), nil
	}
	format, err := get(keyFormat)
	if err != nil {
		return st, err
	}
	if format != formatVersion {
		return st, fmt.Errorf("file format %d, this agent reads only format %d", format, formatVersion)
	}
	var live, staging, loaded uint64
	for _, f := range []struct {
		key []byte
		v   *uint64
	}{{keyCursor, &st.cursor}, {keyLive, &live}, {keyStaging, &staging}, {keyLoaded, &loaded}} {
		if *f.v, err = get(f.key); err != nil {
			return st, err
		}
	}
	if live > 1 || staging > 1 || loaded > 1 {
		return st, fmt.Errorf("%w: meta live %d, staging %d, loaded %d", ErrCorrupt, live, staging, loaded)
	}
	st.live, st.staging, st.loaded = int(live), staging == 1, loaded == 1
	// Stats counts committed pages only: fine here, nothing is written yet.
	if st.staging {
		b := tx.Bucket(bucketCards[1-st.live])
		if b == nil {
			return st, fmt.Errorf("%w: staging without its bucket", ErrCorrupt)
		}
		st.sn = b.Stats().KeyN
	}
	if b := tx.Bucket(bucketCards[st.live]); b != nil {
		st.n = b.Stats().KeyN
	}
	return st, nil
}

// reset makes the file an empty cache of the current format.
func (c *Cache) reset(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketCards[0], bucketCards[1]} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
	}
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keyFormat, u64(formatVersion)); err != nil {
		return err
	}
	c.st = state{}
	return putState(meta, c.st)
}

func putState(meta *bolt.Bucket, st state) error {
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{keyCursor, st.cursor},
		{keyLive, uint64(st.live)},
		{keyStaging, b2u(st.staging)},
		{keyLoaded, b2u(st.loaded)},
	} {
		if err := meta.Put(kv.k, u64(kv.v)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) publish() {
	c.cursor.Store(c.st.cursor)
	c.n.Store(int64(c.st.n))
	c.loaded.Store(c.st.loaded)
}

// Apply stores one CardUpdate in one fsync'd transaction; the caller may
// acknowledge the update once Apply returns nil, and must not if it fails.
//
// Reset starts a snapshot: its pages go to a second bucket, and Lookup keeps
// answering from the previous snapshot until the page with Final replaces
// it. Cards with Removed are deleted, others added or replaced. The stored
// cursor becomes u.Cursor only when u is Final; an update with Reset stores
// 0 until then, and the earlier pages of a change set leave it as it was
// (see the package documentation).
func (c *Cache) Apply(u *syncproto.CardUpdate) error {
	if u == nil {
		return errors.New("cardcache: apply nil update")
	}
	if err := u.Validate(); err != nil {
		return fmt.Errorf("cardcache: apply update %d: %w", u.Cursor, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.st
	err := c.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no meta bucket", ErrCorrupt)
		}
		other := 1 - next.live
		var target *bolt.Bucket
		count := &next.sn
		switch {
		case u.Reset:
			if err := tx.DeleteBucket(bucketCards[other]); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			b, err := tx.CreateBucket(bucketCards[other])
			if err != nil {
				return err
			}
			target, next.staging, next.sn = b, true, 0
		case next.staging:
			if target = tx.Bucket(bucketCards[other]); target == nil {
				return fmt.Errorf("%w: staging without its bucket", ErrCorrupt)
			}
		default:
			b, err := tx.CreateBucketIfNotExists(bucketCards[next.live])
			if err != nil {
				return err
			}
			target, count = b, &next.n
		}
		for i := range u.Cards {
			ci := &u.Cards[i]
			key := []byte(ci.CardID)
			had := target.Get(key) != nil
			if ci.Removed {
				if had {
					if err := target.Delete(key); err != nil {
						return err
					}
					*count--
				}
				continue
			}
			rec, err := c.encode(ci)
			if err != nil {
				return err
			}
			if err := target.Put(key, rec); err != nil {
				return err
			}
			if !had {
				*count++
			}
		}
		switch {
		case u.Final && next.staging:
			// The snapshot is complete: it becomes what the kiosk reads.
			next.n, next.sn = next.sn, 0
			if err := tx.DeleteBucket(bucketCards[next.live]); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			next.live, next.staging, next.loaded, next.cursor = other, false, true, u.Cursor
		case u.Final:
			next.cursor = u.Cursor
		case next.staging:
			next.cursor = 0
		}
		return putState(meta, next)
	})
	if err != nil {
		return fmt.Errorf("cardcache: apply update %d: %w", u.Cursor, err)
	}
	c.st = next
	c.publish()
	return nil
}

// Lookup returns what the cache knows about a card id, from the last
// complete snapshot and the changes applied since. It reports false for a
// card id the cache does not hold, and also, after logging it, for an entry
// it cannot read: the tap is recorded all the same. Safe for concurrent use,
// also while Apply runs.
func (c *Cache) Lookup(cardID string) (syncproto.CardInfo, bool) {
	var info syncproto.CardInfo
	if cardID == "" || len(cardID) > syncproto.MaxIDBytes {
		return info, false
	}
	found := false
	err := c.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no meta bucket", ErrCorrupt)
		}
		live := 0
		if v := meta.Get(keyLive); len(v) == 8 && binary.BigEndian.Uint64(v) == 1 {
			live = 1
		}
		b := tx.Bucket(bucketCards[live])
		if b == nil {
			return nil
		}
		rec := b.Get([]byte(cardID))
		if rec == nil {
			return nil
		}
		var err error
		info, err = c.decode(cardID, rec)
		found = err == nil
		return err
	})
	if err != nil {
		// No card id in the log: it names a person's card.
		c.log.Warn("card_cache_lookup_failed", logPath, c.path, logErr, err)
		return syncproto.CardInfo{}, false
	}
	return info, found
}

// Cursor returns the stored cursor, for Hello.CardCursor: 0 when the cache
// is empty or a snapshot is incomplete.
func (c *Cache) Cursor() uint64 { return c.cursor.Load() }

// Len returns the number of card ids Lookup answers from.
func (c *Cache) Len() int { return int(c.n.Load()) }

// Loaded reports whether the cache holds a complete snapshot: until then a
// card it does not know is not "unknown", there is just no data yet.
func (c *Cache) Loaded() bool { return c.loaded.Load() }

// Path returns the file the cache lives in.
func (c *Cache) Path() string { return c.path }

// Close closes the file. Lookup afterwards reports false; Apply fails.
func (c *Cache) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("cardcache: close: %w", err)
	}
	return nil
}

// encode returns the entry stored for ci.
func (c *Cache) encode(ci *syncproto.CardInfo) ([]byte, error) {
	e := *ci
	e.Removed = false
	body, err := c.enc.Marshal(&e)
	if err != nil {
		return nil, fmt.Errorf("encode card entry: %w", err)
	}
	return append([]byte{entryV1}, body...), nil
}

// decode parses the entry stored under cardID. The bytes are not retained:
// bbolt's values live only as long as their transaction.
func (c *Cache) decode(cardID string, rec []byte) (syncproto.CardInfo, error) {
	var ci syncproto.CardInfo
	switch {
	case len(rec) == 0:
		return ci, fmt.Errorf("%w: empty entry", ErrCorrupt)
	case len(rec) > maxEntryBytes:
		return ci, fmt.Errorf("%w: entry of %d bytes", ErrCorrupt, len(rec))
	case rec[0] != entryV1:
		return ci, fmt.Errorf("%w: unknown entry version %d", ErrCorrupt, rec[0])
	}
	if err := c.dec.Unmarshal(rec[1:], &ci); err != nil {
		return ci, fmt.Errorf("%w: entry: %v", ErrCorrupt, err)
	}
	if ci.CardID != cardID {
		return syncproto.CardInfo{}, fmt.Errorf("%w: entry holds another card id", ErrCorrupt)
	}
	return ci, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
