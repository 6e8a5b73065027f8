-- One table holds every kind. WITHOUT ROWID stores rows in primary-key
-- order, so a prefix scan is a range read of one b-tree. TEXT compares with
-- the BINARY collation (memcmp), which is the bytewise key order the store
-- promises.
CREATE TABLE records (
	kind  TEXT NOT NULL,
	key   TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (kind, key)
) WITHOUT ROWID;
