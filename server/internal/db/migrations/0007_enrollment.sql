-- 0007: enrolling terminals with single-use codes, the terminals' own keys,
-- and credential rotation.

-- A code a site manager hands to whoever installs a kiosk. It is typed on
-- the kiosk once: only its SHA-256 is kept, it binds the terminal to one
-- site (and reader direction), and it can be redeemed once before it
-- expires. Rows are kept (used or not) as a record of who let which
-- terminal in; the audit log says the same in words.
CREATE TABLE enrollment_codes (
    code_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_sha256  bytea NOT NULL UNIQUE CHECK (length(code_sha256) = 32),
    site_id      bigint NOT NULL REFERENCES sites,
    -- The terminal id the code is for; NULL lets the installer choose one
    -- (or the server name it).
    terminal_id  text CHECK (terminal_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    direction    text NOT NULL CHECK (direction IN ('in', 'out', 'toggle')),
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    used_by      text REFERENCES terminals,
    CHECK (expires_at > created_at),
    CHECK ((used_at IS NULL) = (used_by IS NULL))
);
CREATE INDEX enrollment_codes_site ON enrollment_codes (site_id);

-- A terminal's own Ed25519 public key, sent at enrollment. The terminal
-- signs enrollment and rotation requests with the private key, which never
-- leaves it. One active key per terminal; a re-enrollment replaces it.
CREATE TABLE terminal_keys (
    key_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    terminal_id  text NOT NULL REFERENCES terminals,
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX terminal_keys_active ON terminal_keys (terminal_id) WHERE revoked_at IS NULL;

-- Rotation: a new credential names the one it replaces. Both are valid
-- until the new one is first used (confirmed_at); then the old one is
-- revoked. issued_by says how a credential came to be.
ALTER TABLE terminal_credentials
    ADD COLUMN replaces      bigint REFERENCES terminal_credentials,
    ADD COLUMN confirmed_at  timestamptz,
    ADD COLUMN issued_by     text NOT NULL DEFAULT 'cli';
