-- One table holds every kind. COLLATE "C" makes key comparison bytewise
-- (memcmp), the order the store promises, whatever the database locale.
CREATE TABLE records (
	kind  TEXT  NOT NULL COLLATE "C",
	key   TEXT  NOT NULL COLLATE "C",
	value BYTEA NOT NULL,
	PRIMARY KEY (kind, key)
);
