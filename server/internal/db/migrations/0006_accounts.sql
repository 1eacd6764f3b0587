-- 0006: people who log in (users), what they may do (memberships, managed
-- sites), how they log in (pending logins, recovery codes, throttling),
-- their sessions, and the inspector grants of kontrollbesök. Package account
-- owns every table here.

CREATE TABLE users (
    user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Lower-cased and trimmed by package account before it gets here.
    email          text NOT NULL UNIQUE CHECK (email <> '' AND email = lower(email)),
    name           text NOT NULL CHECK (name <> ''),
    -- argon2id in PHC form: $argon2id$v=19$m=...,t=...,p=...$salt$hash.
    -- NULL: no password set yet, nobody can log in as this user.
    password_hash  text,
    -- Set for a password handed out (bootstrap, reset): the web layer makes
    -- the user choose a new one before anything else.
    password_must_change boolean NOT NULL DEFAULT false,
    password_changed_at  timestamptz,
    -- The TOTP secret sealed with pii.Keys, bound to the user row
    -- (aad "users.totp_secret", user_id). Present but not enabled during
    -- enrolment, until the user confirms with a code.
    totp_secret_enc  bytea,
    totp_enabled     boolean NOT NULL DEFAULT false,
    -- The highest 30 s time step whose code was accepted: a code is refused
    -- unless its step is above this (RFC 6238 section 5.2, no replay).
    totp_last_step   bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz,
    CHECK (NOT totp_enabled OR totp_secret_enc IS NOT NULL)
);

-- What a user may do for an organisation. An operator looks after the fleet
-- and sees no organisation's data: its row has no org_id.
CREATE TABLE memberships (
    user_id     bigint NOT NULL REFERENCES users,
    org_id      bigint REFERENCES organisations,
    role        text NOT NULL CHECK (role IN ('org_admin', 'site_manager', 'contractor_admin', 'operator')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  text NOT NULL CHECK (granted_by <> ''),
    CHECK ((role = 'operator') = (org_id IS NULL))
);
CREATE UNIQUE INDEX memberships_unique ON memberships (user_id, role, coalesce(org_id, 0));
CREATE INDEX memberships_org ON memberships (org_id) WHERE org_id IS NOT NULL;

-- The sites a site manager manages. org_id is the site's owner, for which
-- the user holds the site_manager role (checked by package account).
CREATE TABLE site_managers (
    user_id     bigint NOT NULL REFERENCES users,
    site_id     bigint NOT NULL REFERENCES sites,
    org_id      bigint NOT NULL REFERENCES organisations,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  text NOT NULL CHECK (granted_by <> ''),
    PRIMARY KEY (user_id, site_id)
);
CREATE INDEX site_managers_site ON site_managers (site_id);

-- Single-use second-factor codes; only a SHA-256 of each (80 random bits)
-- is kept.
CREATE TABLE recovery_codes (
    user_id      bigint NOT NULL REFERENCES users,
    code_sha256  bytea NOT NULL CHECK (length(code_sha256) = 32),
    created_at   timestamptz NOT NULL,
    used_at      timestamptz,
    PRIMARY KEY (user_id, code_sha256)
);

-- A password accepted, second factor still due. Short-lived; the token that
-- names it is only kept as a SHA-256.
CREATE TABLE pending_logins (
    token_sha256  bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    user_id       bigint NOT NULL REFERENCES users,
    remote_ip     text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX pending_logins_expires ON pending_logins (expires_at);

-- Failure counters of the named login limits, shared by every replica. key
-- is a SHA-256 of the limit's name and the account or address, so the table
-- holds no e-mail addresses.
CREATE TABLE login_throttle (
    key           bytea PRIMARY KEY CHECK (length(key) = 32),
    failures      integer NOT NULL,
    last_failure  timestamptz NOT NULL,
    locked_until  timestamptz
);

-- A kontrollbesök: read-only access to one site, granted on the spot by a
-- site manager. The link token (256 bits) and the short code (40 bits) are
-- kept only as SHA-256; both are short-lived and refused once expired,
-- revoked or used up.
CREATE TABLE inspector_grants (
    grant_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id      bigint NOT NULL REFERENCES sites,
    org_id       bigint NOT NULL REFERENCES organisations, -- the site's owner
    created_by   bigint NOT NULL REFERENCES users,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL CHECK (expires_at > created_at),
    link_sha256  bytea NOT NULL UNIQUE CHECK (length(link_sha256) = 32),
    code_sha256  bytea NOT NULL UNIQUE CHECK (length(code_sha256) = 32),
    max_uses     integer NOT NULL CHECK (max_uses > 0),
    uses         integer NOT NULL DEFAULT 0,
    revoked_at   timestamptz,
    revoked_by   bigint REFERENCES users
);
CREATE INDEX inspector_grants_site ON inspector_grants (site_id, created_at);

-- Server-side sessions. The cookie holds a 256-bit random token; only its
-- SHA-256 is kept. A session is a user's, or an inspector's through a grant.
CREATE TABLE sessions (
    session_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    user_id       bigint REFERENCES users,
    grant_id      bigint REFERENCES inspector_grants,
    csrf_secret   bytea NOT NULL CHECK (length(csrf_secret) = 32),
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL, -- absolute expiry
    revoked_at    timestamptz,
    CHECK ((user_id IS NULL) <> (grant_id IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX sessions_grant ON sessions (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);
