package osdp

import (
	"crypto/aes"
	"crypto/cipher"
	"testing"
)

func mustAES(t testing.TB, k Key) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(k[:])
	if err != nil {
		t.Fatal(err)
	}
	return b
}
