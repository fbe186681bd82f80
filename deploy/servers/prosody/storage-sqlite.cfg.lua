-- Prosody 0.12: every store (accounts, rosters, pubsub nodes and items, stream-management
-- counters...) in one SQLite file, through mod_storage_sql and LuaDBI (Debian: lua-dbi-sqlite3).
-- For a fleet on one machine without a database server; PostgreSQL is the one for larger fleets
-- (storage-postgresql.cfg.lua, docs/servers.md).
--
-- Install: copy to /etc/prosody/conf.d/ (or Include it from prosody.cfg.lua). Prosody creates the
-- file and its tables at its first start.

-- One database file for all stores instead of one small file per account and store.
storage = "sql"

sql = {
	driver = "SQLite3";
	-- A relative path is taken from Prosody's data_path (Debian: /var/lib/prosody), which the
	-- prosody user can write. CHANGE-ME only if you want the file elsewhere.
	database = "prosody.sqlite";
}
