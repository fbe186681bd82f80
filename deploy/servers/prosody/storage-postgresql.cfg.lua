-- Prosody 0.12: every store (accounts, rosters, pubsub nodes and items, stream-management
-- counters...) in PostgreSQL, through mod_storage_sql and LuaDBI (Debian: lua-dbi-postgresql).
--
-- Install: copy to /etc/prosody/conf.d/ (or Include it from prosody.cfg.lua), replace every
-- CHANGE-ME, and create the role and the database first (docs/servers.md, "Prosody 0.12"). Prosody
-- creates its two tables, prosody and prosodyarchive, at its first connection.
-- Data already in file storage can be copied over with prosody-migrator (docs/servers.md; not
-- tested here).

-- One database for all stores: a fleet's accounts and pubsub items no longer live in one small
-- file each under /var/lib/prosody.
storage = "sql"

sql = {
	driver = "PostgreSQL";
	-- The database and the role that owns it (it must be allowed to create tables in it).
	database = "prosody"; -- CHANGE-ME if you named it otherwise
	username = "prosody"; -- CHANGE-ME if you named it otherwise
	password = "CHANGE-ME"; -- the role's password
	-- Over TCP with a password. Prosody waits for every query (one connection, no thread pool):
	-- keep the database on the same machine or a low-latency link.
	host = "127.0.0.1"; -- CHANGE-ME if PostgreSQL runs elsewhere
	port = 5432;
}
