package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often the certificate files are looked at for a
// renewal.
const certCheckInterval = 30 * time.Second

// certReloader serves a certificate from files and picks up a renewed one
// (certbot, an ACME client, a config-management run) without a restart:
// the files are checked at most every certCheckInterval, and a pair that
// does not load keeps the previous certificate in use, with an error logged.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times when loaded
	checked time.Time
}

func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	cert, stamp, err := loadCert(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = cert, stamp, time.Now()
	return r, nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < certCheckInterval {
		return r.cert, nil
	}
	r.checked = time.Now()
	if stamp, err := fileStamp(r.certFile, r.keyFile); err != nil || stamp == r.stamp {
		return r.cert, nil
	}
	cert, stamp, err := loadCert(r.certFile, r.keyFile)
	if err != nil {
		r.logger.Error("tls_reload_failed", "err", err)
		return r.cert, nil
	}
	r.cert, r.stamp = cert, stamp
	r.logger.Info("tls_certificate_reloaded", "not_after", cert.Leaf.NotAfter)
	return r.cert, nil
}

func loadCert(certFile, keyFile string) (*tls.Certificate, string, error) {
	stamp, err := fileStamp(certFile, keyFile)
	if err != nil {
		return nil, "", err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("daemon: tls: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("daemon: tls: %w", err)
		}
	}
	return &cert, stamp, nil
}

func fileStamp(files ...string) (string, error) {
	var s string
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("daemon: tls: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// tlsConfig is the main listener's TLS configuration.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		// HTTP/1.1 only: the websocket upgrade needs it, and a browser that
		// spoke HTTP/2 could try websockets over it, which the server's
		// websocket library does not do.
		NextProtos: []string{"http/1.1"},
	}
}
