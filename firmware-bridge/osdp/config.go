package osdp

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ParseConfig parses the terminal's reader option for an OSDP reader:
//
//	osdp:/dev/ttyUSB0?addr=1&baud=9600&keyfile=/etc/liggare/reader.key
//
// The "osdp:" prefix is optional. Parameters:
//
//	addr      PD address, 0-126 (default 0)
//	baud      line speed (default 9600)
//	keyfile   file holding the reader's secure channel key in hex (preferred)
//	key       the key itself in hex (visible in process listings: avoid)
//	install   1: install mode, set the key on a factory-new reader (SCBK-D)
//	name      reader name on a terminal with several ("in", "out")
//	poll      poll interval (default 200ms)
//	timeout   reply timeout (default 200ms)
//	offline   missed replies before the reader is offline (default 8)
//	holdoff   card hold-off (default 2s)
//
// The key file is read here, so a bad file fails at start-up. Errors never
// repeat a key.
func ParseConfig(s string) (Config, error) {
	var cfg Config
	s = strings.TrimPrefix(s, "osdp:")
	device, query, _ := strings.Cut(s, "?")
	if device == "" {
		return cfg, fmt.Errorf("%w: no device in %q", ErrConfig, "osdp:"+device)
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		// url's error quotes the offending text, which may be part of a key.
		return cfg, fmt.Errorf("%w: malformed parameters (check separators and %%-escapes)", ErrConfig)
	}
	cfg.Device = device
	pd := PDConfig{}
	one := func(name string) (string, bool, error) {
		v, ok := params[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, fmt.Errorf("%w: %s given %d times", ErrConfig, name, len(v))
		}
		return v[0], true, nil
	}
	for name := range params {
		switch name {
		case "addr", "baud", "keyfile", "key", "install", "name", "poll", "timeout", "offline", "holdoff":
		default:
			return cfg, fmt.Errorf("%w: unknown parameter %q", ErrConfig, name)
		}
	}
	if v, ok, err := one("addr"); err != nil {
		return cfg, err
	} else if ok {
		n, err := strconv.ParseUint(v, 0, 8)
		if err != nil || n > MaxAddr {
			return cfg, fmt.Errorf("%w: addr %q: want 0-%d", ErrConfig, v, MaxAddr)
		}
		pd.Addr = byte(n)
	}
	if v, ok, err := one("baud"); err != nil {
		return cfg, err
	} else if ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return cfg, fmt.Errorf("%w: baud %q", ErrConfig, v)
		case n != 9600 && n != 19200 && n != 38400 && n != 57600 && n != 115200 && n != 230400:
			return cfg, fmt.Errorf("%w: baud %d: OSDP uses 9600, 19200, 38400, 57600, 115200 or 230400", ErrConfig, n)
		}
		cfg.Baud = n
	}
	keyfile, hasFile, err := one("keyfile")
	if err != nil {
		return cfg, err
	}
	keyhex, hasKey, err := one("key")
	if err != nil {
		return cfg, fmt.Errorf("%w: key given more than once", ErrConfig)
	}
	switch {
	case hasFile && hasKey:
		return cfg, fmt.Errorf("%w: both key and keyfile", ErrConfig)
	case hasFile:
		if pd.Key, err = ReadKeyFile(keyfile); err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	case hasKey:
		if pd.Key, err = ParseKey(keyhex); err != nil {
			return cfg, fmt.Errorf("%w: key: %w", ErrConfig, err)
		}
	}
	if (hasFile || hasKey) && pd.Key.IsZero() {
		return cfg, fmt.Errorf("%w: an all-zero key", ErrConfig)
	}
	if v, ok, err := one("install"); err != nil {
		return cfg, err
	} else if ok {
		if pd.Install, err = strconv.ParseBool(v); err != nil {
			return cfg, fmt.Errorf("%w: install %q", ErrConfig, v)
		}
		if pd.Install && pd.Key.IsZero() {
			return cfg, fmt.Errorf("%w: install needs key or keyfile", ErrConfig)
		}
	}
	if v, ok, err := one("name"); err != nil {
		return cfg, err
	} else if ok {
		pd.Name = v
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"poll", &cfg.PollInterval}, {"timeout", &cfg.ReplyTimeout}, {"holdoff", &cfg.HoldOff}} {
		v, ok, err := one(d.name)
		if err != nil {
			return cfg, err
		}
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 || dur > time.Minute {
			return cfg, fmt.Errorf("%w: %s %q: want a duration up to 1m", ErrConfig, d.name, v)
		}
		*d.to = dur
	}
	if v, ok, err := one("offline"); err != nil {
		return cfg, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return cfg, fmt.Errorf("%w: offline %q: want 1-100", ErrConfig, v)
		}
		cfg.OfflineAfter = n
	}
	cfg.PDs = []PDConfig{pd}
	return cfg, nil
}
