// Package pii encrypts personal identity numbers at rest and computes the
// blind index that finds a row by its number without decrypting anything
// (design invariant 7: "Personnummer is stored encrypted (AES-256-GCM, key
// from configuration) with a keyed hash for lookup").
//
// # Why
//
// The ledger must hold each worker's personnummer or samordningsnummer (SFL
// 39 kap. 12 §) and keep it for years, and the Swedish data protection act
// (3 kap. 10 §) allows processing it only where clearly justified. Stored
// encrypted, a copy of the database or of a backup gives nothing away
// without the keys, which live in the configuration and never in the
// database. Inspectors still see everything decrypted: the server opens the
// numbers for inspector views and exports.
//
// # Ciphertext format
//
//	keyID (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)
//
// Seal uses the current key and a random 96-bit nonce; a ciphertext is 29
// bytes longer than its plaintext. The key id is authenticated along with the
// caller's associated data (aad), so no byte of a ciphertext can be changed
// unnoticed. Key id 0 is reserved and never written.
//
// The aad binds a ciphertext to the row it belongs to: pass the same bytes to
// Seal and Open, for instance AAD("workers.pnr", tenantID, workerID). A
// ciphertext copied into another row, or another tenant, then fails to open,
// so a database user who can write rows but has no key cannot swap two
// people's numbers. Changing a row's aad means re-sealing its number.
//
// Random nonces limit a key to 2^32 seals; at hundreds of thousands of
// workers and one seal per registration this is far away, and every rotation
// starts a new count.
//
// # Keys and rotation
//
// LoadKeys takes the encryption keyring and the index key as configuration
// strings, each key 32 bytes in standard base64 (GenerateKeyB64 makes one).
// The keyring is either one key, which gets id 1, or a comma-separated list
// "ID:KEY,ID:KEY,..." with ids 1–255 whose first entry is the current key,
// for instance (the variable's name is the configuration's business):
//
//	LIGGARE_PII_KEYS="2:<new key>,1:<old key>"
//
// Seal always uses the current key; Open picks the key named by the
// ciphertext's first byte. To rotate: put the new key first with a new id,
// deploy to every server, re-seal the rows whose KeyIDOf differs from
// CurrentKeyID (Open, then Seal), and only then drop the old key. A
// ciphertext whose key is gone fails with ErrUnknownKeyID, not ErrDecrypt,
// so a key dropped too early is told apart from tampering.
//
// # Blind index
//
// Index is HMAC-SHA256, under its own 32-byte key, over the domain-separated
// input "liggare/pnr/v1" || 0x00 || canonical number, kept at the full 32
// bytes (16 would do at this scale, but 16 bytes per row buy nothing worth a
// judgement call). The caller passes the canonical form from package idnum
// (PersonNumber.String, ForeignID.String), so that every way of writing a
// number finds the same row; those forms never collide with one another.
//
// The index key is as secret as the encryption key: personal identity
// numbers are few (some tens of millions of valid ones), so anyone holding
// the index key and the index column can recover every number by trying them
// all in minutes. Unkeyed, a hash would give that away to anyone with the
// database. The index key cannot be rotated like the encryption keys: an
// HMAC cannot be re-keyed without the input, so a new index key means a new
// index column filled by decrypting every row (with the encryption keys) and
// indexing it again, then switching lookups over. Bump the domain's "v1"
// when the input's meaning changes.
//
// # Keeping keys out of logs
//
// Keys formats as "pii.Keys{redacted}" whatever the verb (fmt.Formatter,
// fmt.GoStringer, slog.LogValuer), and its material sits behind a pointer,
// so that printing a struct holding a Keys shows an address, not bytes.
// Errors never contain key material, plaintext or ciphertext.
package pii
