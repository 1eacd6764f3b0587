package pii

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Fixed keys for known-answer tests: bytes 0–31 and 32–63.
var (
	encKeyBytes   = seq(0)
	indexKeyBytes = seq(32)
	encKeyB64     = base64.StdEncoding.EncodeToString(encKeyBytes)
	indexKeyB64   = base64.StdEncoding.EncodeToString(indexKeyBytes)
)

func seq(from byte) []byte {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

func mustLoad(t testing.TB, enc, index string) *Keys {
	t.Helper()
	k, err := LoadKeys(enc, index)
	if err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	return k
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var rowAAD = AAD("workers.pnr", "tenant-1", "worker-42")

func TestAAD(t *testing.T) {
	// Length-prefixed parts; pinned because stored ciphertexts depend on it.
	if got, want := hex.EncodeToString(rowAAD), "0b776f726b6572732e706e720874656e616e742d3109776f726b65722d3432"; got != want {
		t.Errorf("AAD(workers.pnr, tenant-1, worker-42) = %s, want %s", got, want)
	}
	if bytes.Equal(AAD("ab", "c"), AAD("a", "bc")) || bytes.Equal(AAD("a", ""), AAD("a")) {
		t.Error("AAD is ambiguous across part boundaries")
	}
	if got := AAD(); len(got) != 0 {
		t.Errorf("AAD() = %x, want empty", got)
	}
}

// TestKnownAnswer opens ciphertexts made outside Go (Python's cryptography
// package, AES-GCM with a fixed nonce) and checks the index against an
// independent HMAC: the stored format must never change by accident.
func TestKnownAnswer(t *testing.T) {
	tests := []struct {
		ring string
		ct   string
	}{
		{encKeyB64, "01a0a1a2a3a4a5a6a7a8a9aaabd721441c74f933875b5db0e5b03906fd4a26fd2ff2e46ab55b538c40"},
		{"7:" + encKeyB64, "07a0a1a2a3a4a5a6a7a8a9aaabd721441c74f933875b5db0e50fe7d55c739d9f53dfcb3384f75b43a9"},
	}
	for _, tt := range tests {
		k := mustLoad(t, tt.ring, indexKeyB64)
		got, err := k.Open(mustHex(tt.ct), rowAAD)
		if err != nil || string(got) != "198112189876" {
			t.Errorf("Open(%s) = %q, %v; want 198112189876", tt.ct, got, err)
		}
	}
	k := mustLoad(t, encKeyB64, indexKeyB64)
	if got, want := hex.EncodeToString(k.Index("198112189876")), "39f9ec94a8a783f8d7ad93a6bf4929a51f318a07f5c0380ae0489ebea99b57ac"; got != want {
		t.Errorf("Index(198112189876) = %s, want %s", got, want)
	}
}

func TestSealOpen(t *testing.T) {
	k := mustLoad(t, encKeyB64, indexKeyB64)
	for _, pt := range []string{"", "198112189876", "DE:T22000129", strings.Repeat("x", 1000)} {
		ct, err := k.Seal([]byte(pt), rowAAD)
		if err != nil {
			t.Fatalf("Seal(%q) = %v", pt, err)
		}
		if len(ct) != len(pt)+Overhead || ct[0] != 1 {
			t.Errorf("Seal(%q) = %d bytes with key id %d, want %d bytes and id 1", pt, len(ct), ct[0], len(pt)+Overhead)
		}
		if pt != "" && bytes.Contains(ct, []byte(pt)) {
			t.Errorf("Seal(%q) contains the plaintext", pt)
		}
		got, err := k.Open(ct, rowAAD)
		if err != nil || string(got) != pt {
			t.Errorf("Open(Seal(%q)) = %q, %v", pt, got, err)
		}
		again, _ := k.Seal([]byte(pt), rowAAD)
		if bytes.Equal(again, ct) {
			t.Errorf("Seal(%q) twice gave the same ciphertext: nonce reused", pt)
		}
	}
	// nil aad and empty aad are the same associated data.
	ct, _ := k.Seal([]byte("x"), nil)
	if _, err := k.Open(ct, []byte{}); err != nil {
		t.Errorf("Open with empty aad of a ciphertext sealed with nil aad = %v", err)
	}
}

func TestOpenTampered(t *testing.T) {
	k := mustLoad(t, "3:"+encKeyB64+",1:"+base64.StdEncoding.EncodeToString(seq(100)), indexKeyB64)
	ct, err := k.Seal([]byte("198112189876"), rowAAD)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(ct)
			bad[i] ^= mask
			got, err := k.Open(bad, rowAAD)
			if err == nil {
				t.Fatalf("Open with byte %d ^ %#x = %q, nil; want an error", i, mask, got)
			}
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKeyID) {
				t.Errorf("Open with byte %d ^ %#x = %v, want ErrDecrypt or ErrUnknownKeyID", i, mask, err)
			}
		}
	}
	for n := 0; n < len(ct); n++ {
		if _, err := k.Open(ct[:n], rowAAD); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open(first %d bytes) = %v, want ErrDecrypt", n, err)
		}
	}
	if _, err := k.Open(append(bytes.Clone(ct), 0), rowAAD); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(ciphertext + 1 byte) = %v, want ErrDecrypt", err)
	}
}

func TestOpenWrongRow(t *testing.T) {
	k := NewTestKeys()
	ct, err := k.Seal([]byte("198112189876"), AAD("workers.pnr", "tenant-1", "worker-42"))
	if err != nil {
		t.Fatal(err)
	}
	for _, aad := range [][]byte{
		AAD("workers.pnr", "tenant-1", "worker-43"),
		AAD("workers.pnr", "tenant-2", "worker-42"),
		AAD("contractors.pnr", "tenant-1", "worker-42"),
		AAD("workers.pnr", "tenant-1worker-42"),
		nil,
	} {
		if got, err := k.Open(ct, aad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Open with aad %x = %q, %v; want ErrDecrypt", aad, got, err)
		}
	}
	// Another installation's key, under the same id.
	if _, err := NewTestKeys().Open(ct, rowAAD); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open under another key with the same id = %v, want ErrDecrypt", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := GenerateKeyB64(), GenerateKeyB64()
	before := mustLoad(t, oldKey, indexKeyB64) // a single key is id 1
	ctOld, _ := before.Seal([]byte("198112189876"), rowAAD)

	during := mustLoad(t, " 2:"+newKey+" , 1:"+oldKey+"\n", indexKeyB64)
	if during.CurrentKeyID() != 2 {
		t.Fatalf("CurrentKeyID() = %d, want 2 (the first entry)", during.CurrentKeyID())
	}
	if got, err := during.Open(ctOld, rowAAD); err != nil || string(got) != "198112189876" {
		t.Fatalf("Open(old ciphertext) after rotation = %q, %v", got, err)
	}
	ctNew, _ := during.Seal([]byte("198112189876"), rowAAD)
	for _, c := range []struct {
		ct   []byte
		want byte
	}{{ctOld, 1}, {ctNew, 2}} {
		if id, err := KeyIDOf(c.ct); err != nil || id != c.want {
			t.Errorf("KeyIDOf = %d, %v; want %d", id, err, c.want)
		}
	}
	if _, err := before.Open(ctNew, rowAAD); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Open(new ciphertext) with the old ring = %v, want ErrUnknownKeyID", err)
	}

	after := mustLoad(t, "2:"+newKey, indexKeyB64)
	if _, err := after.Open(ctOld, rowAAD); !errors.Is(err, ErrUnknownKeyID) {
		t.Errorf("Open(old ciphertext) after dropping key 1 = %v, want ErrUnknownKeyID", err)
	}
	if got, err := after.Open(ctNew, rowAAD); err != nil || string(got) != "198112189876" {
		t.Errorf("Open(new ciphertext) after dropping key 1 = %q, %v", got, err)
	}
	// Rotation of the encryption keys leaves the index alone.
	if !bytes.Equal(before.Index("198112189876"), after.Index("198112189876")) {
		t.Error("Index changed with the encryption keys")
	}
}

func TestIndex(t *testing.T) {
	k := mustLoad(t, encKeyB64, indexKeyB64)
	a1, a2 := k.Index("198112189876"), k.Index("198112189876")
	if len(a1) != IndexSize || !bytes.Equal(a1, a2) {
		t.Fatalf("Index is not deterministic or not %d bytes: %x, %x", IndexSize, a1, a2)
	}
	seen := map[string]string{}
	for _, s := range []string{"198112189876", "198112189877", "191212121212", "DE:T22000129", ""} {
		h := hex.EncodeToString(k.Index(s))
		if other, ok := seen[h]; ok {
			t.Errorf("Index(%q) = Index(%q)", s, other)
		}
		seen[h] = s
	}
	otherIndex := mustLoad(t, encKeyB64, base64.StdEncoding.EncodeToString(seq(64)))
	if bytes.Equal(otherIndex.Index("198112189876"), a1) {
		t.Error("Index does not depend on the index key")
	}
	otherEnc := mustLoad(t, base64.StdEncoding.EncodeToString(seq(64)), indexKeyB64)
	if !bytes.Equal(otherEnc.Index("198112189876"), a1) {
		t.Error("Index depends on the encryption key")
	}
	if bytes.Contains(a1, []byte("198112189876")) {
		t.Error("Index contains its input")
	}
}

func TestLoadKeysErrors(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(seq(0)[:16])
	k2 := base64.StdEncoding.EncodeToString(seq(64))
	tests := []struct{ name, enc, index string }{
		{"empty enc", "", indexKeyB64},
		{"empty index", encKeyB64, ""},
		{"short enc", short, indexKeyB64},
		{"short index", encKeyB64, short},
		{"long", base64.StdEncoding.EncodeToString(make([]byte, 33)), indexKeyB64},
		{"url base64", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))), indexKeyB64},
		{"raw base64", strings.TrimRight(encKeyB64, "="), indexKeyB64},
		{"hex", hex.EncodeToString(encKeyBytes), indexKeyB64},
		{"id 0", "0:" + encKeyB64, indexKeyB64},
		{"id 256", "256:" + encKeyB64, indexKeyB64},
		{"id text", "x:" + encKeyB64, indexKeyB64},
		{"no id in ring", encKeyB64 + ",2:" + k2, indexKeyB64},
		{"repeated id", "1:" + encKeyB64 + ",1:" + k2, indexKeyB64},
		{"repeated key", "1:" + encKeyB64 + ",2:" + encKeyB64, indexKeyB64},
		{"index = enc", encKeyB64, encKeyB64},
		{"index = old enc", "2:" + k2 + ",1:" + encKeyB64, encKeyB64},
		{"trailing comma", "1:" + encKeyB64 + ",", indexKeyB64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKeys(tt.enc, tt.index)
			if !errors.Is(err, ErrInvalidKey) || k != nil {
				t.Fatalf("LoadKeys(%s) = %v, %v; want ErrInvalidKey", tt.name, k, err)
			}
			for _, secret := range []string{encKeyB64, indexKeyB64, k2, strings.TrimRight(encKeyB64, "=")[:20]} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("LoadKeys(%s) error %q contains key material", tt.name, err)
				}
			}
		})
	}
}

func TestNotLoaded(t *testing.T) {
	for _, k := range []*Keys{nil, {}} {
		if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Seal on unloaded Keys = %v, want ErrInvalidKey", err)
		}
		if _, err := k.Open(make([]byte, 40), nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Open on unloaded Keys = %v, want ErrInvalidKey", err)
		}
	}
}

func TestGenerateKeyB64(t *testing.T) {
	a, b := GenerateKeyB64(), GenerateKeyB64()
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != KeySize || a == b {
		t.Errorf("GenerateKeyB64() = %q, %q (decoded %d bytes, %v)", a, b, len(raw), err)
	}
	if _, err := LoadKeys(a, b); err != nil {
		t.Errorf("LoadKeys(two generated keys) = %v", err)
	}
}

// TestKeysNeverPrinted prints Keys every way a careless log line might and
// looks for the key material in any encoding.
func TestKeysNeverPrinted(t *testing.T) {
	k := mustLoad(t, "2:"+encKeyB64+",1:"+base64.StdEncoding.EncodeToString(seq(100)), indexKeyB64)
	var outs []string
	for _, v := range []any{k, *k} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%08.3f"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		outs = append(outs, fmt.Sprint(v), strings.TrimSuffix(fmt.Sprintln(v), "\n"))
	}
	for _, o := range outs {
		if o != "pii.Keys{redacted}" {
			t.Errorf("Keys printed as %q, want pii.Keys{redacted}", o)
		}
	}
	for _, s := range []string{k.String(), k.GoString(), k.LogValue().String()} {
		if s != "pii.Keys{redacted}" {
			t.Errorf("Keys method returned %q, want pii.Keys{redacted}", s)
		}
	}
	// Keys inside other values: fields are printed without their methods.
	type server struct {
		keys  *Keys
		value Keys
		Pub   Keys
		List  []*Keys
		Map   map[string]Keys
	}
	s := server{k, *k, *k, []*Keys{k}, map[string]Keys{"k": *k}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, &s))
	}
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(mk(&buf)).Info("loaded", "keys", k, "value", *k, slog.Any("any", k))
		outs = append(outs, buf.String())
		if !strings.Contains(buf.String(), "pii.Keys{redacted}") {
			t.Errorf("slog output %q lacks pii.Keys{redacted}", buf.String())
		}
	}

	for _, key := range [][]byte{encKeyBytes, indexKeyBytes, seq(100)} {
		forms := []string{
			base64.StdEncoding.EncodeToString(key)[:16],
			hex.EncodeToString(key)[:16],
			strings.ToUpper(hex.EncodeToString(key)[:16]),
			strings.Trim(fmt.Sprint(key[8:16]), "[]"),
			fmt.Sprintf("%#v", key[8:12])[len("[]byte{"):],
			string(key[8:16]),
		}
		for _, o := range outs {
			for _, f := range forms {
				if strings.Contains(o, f) {
					t.Fatalf("printed Keys %q contains key material %q", o, f)
				}
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	k := NewTestKeys()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			aad := AAD("workers.pnr", fmt.Sprint(g))
			for i := range 200 {
				pt := fmt.Appendf(nil, "%012d", i)
				ct, err := k.Seal(pt, aad)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := k.Open(ct, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open(Seal(%s)) = %q, %v", pt, got, err)
					return
				}
				_ = k.Index(string(pt))
			}
		})
	}
	wg.Wait()
}

func FuzzOpen(f *testing.F) {
	// The only ciphertext that may open is the known answer, which is fixed:
	// a Seal here would differ in every fuzzing worker (random nonce).
	k := mustLoad(f, "2:"+base64.StdEncoding.EncodeToString(seq(100))+",1:"+encKeyB64, indexKeyB64)
	good := mustHex("01a0a1a2a3a4a5a6a7a8a9aaabd721441c74f933875b5db0e5b03906fd4a26fd2ff2e46ab55b538c40")
	f.Add(good, rowAAD)
	f.Add(good, AAD("workers.pnr", "tenant-1", "worker-43"))
	f.Add(append([]byte{2}, good[1:]...), rowAAD)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0}, []byte(nil))
	f.Add(make([]byte, Overhead), []byte("x"))
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		pt, err := k.Open(ct, aad)
		if err == nil {
			// Only a real ciphertext opens: the seed, with its own aad.
			if !bytes.Equal(ct, good) || !bytes.Equal(aad, rowAAD) || string(pt) != "198112189876" {
				t.Fatalf("Open(%x, %x) = %q, nil: forged", ct, aad, pt)
			}
			return
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKeyID) {
			t.Fatalf("Open(%x) = %v, want ErrDecrypt or ErrUnknownKeyID", ct, err)
		}
		if pt != nil {
			t.Fatalf("Open(%x) returned plaintext %q with an error", ct, pt)
		}
	})
}

func FuzzLoadKeys(f *testing.F) {
	f.Add(encKeyB64, indexKeyB64)
	f.Add("2:"+encKeyB64+",1:"+base64.StdEncoding.EncodeToString(seq(100)), indexKeyB64)
	f.Add("1:", "")
	f.Add(",,", ":")
	f.Fuzz(func(t *testing.T, enc, index string) {
		k, err := LoadKeys(enc, index)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) || k != nil {
				t.Fatalf("LoadKeys = %v, %v; want nil, ErrInvalidKey", k, err)
			}
			return
		}
		ct, err := k.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Open(ct, nil); err != nil || string(got) != "x" {
			t.Fatalf("Open(Seal(x)) = %q, %v", got, err)
		}
	})
}
