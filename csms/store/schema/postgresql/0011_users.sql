-- Operator users on PostgreSQL: the same table and rules as ../0011_users.sql.
-- Operator users: a name, a role (csms.roles: viewer, support, finance or admin) and a
-- scrypt hash of the password (csms.ocpp16.auth's format). A user is disabled, never
-- deleted, so that the audit's "user:NAME" keeps naming someone.
CREATE TABLE users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    role          TEXT COLLATE "C" NOT NULL,
    password_hash TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    disabled_at   TEXT COLLATE "C"
);
-- The user an API key acts for, with that user's role. NULL: a key made before users
-- existed, which acts as admin (as do the keys of the config's api.keys).
ALTER TABLE api_keys ADD COLUMN user_name TEXT COLLATE "C" REFERENCES users (name);
