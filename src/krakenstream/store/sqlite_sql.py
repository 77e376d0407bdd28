"""The SQL of the SQLite history store (:mod:`krakenstream.store.sqlite`, schema 3): the
file's tables and view, the writer connection's scratch tables, and every statement the
writer and the readers run, each with what it is for. Why the layout is what it is (two
tables, the slack, bulk statements) is said in that module."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settled (
        pair TEXT NOT NULL,
        ts INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (pair, ts)
    ) WITHOUT ROWID""",
    # a rowid table: rows are appended in arrival order, a tick's rows on a few new pages
    """CREATE TABLE IF NOT EXISTS recent (
        pair TEXT NOT NULL,
        ts INTEGER NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS recent_key ON recent (pair, ts)",
    """CREATE TABLE IF NOT EXISTS pair_counts (
        pair TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # every stored snapshot, for whoever reads the file by hand (a row is in one of the two)
    """CREATE VIEW IF NOT EXISTS snapshots AS
        SELECT pair, ts, data FROM settled UNION ALL SELECT pair, ts, data FROM recent""",
)
#: the writer connection's own scratch tables (TEMP: per connection, never in the file): a
#: batch goes into ``kms_in`` in a few statements, and every step after works on all of it
#: at once (see ``_add``)
SCRATCH = (
    "PRAGMA temp_store = MEMORY",
    "CREATE TEMP TABLE IF NOT EXISTS kms_in (pair TEXT NOT NULL, ts INTEGER NOT NULL, "
    "data BLOB NOT NULL, PRIMARY KEY (pair, ts)) WITHOUT ROWID",
    "CREATE TEMP TABLE IF NOT EXISTS kms_floor (pair TEXT PRIMARY KEY, floor INTEGER) "
    "WITHOUT ROWID",
)
#: rows a statement of many rows carries (``{}`` in the statements below: a VALUES list):
#: a batch goes in chunks of the largest, each padded up to the next size with its last row
#: repeated, which the statement ignores or sets again. So the writer's connection keeps a
#: few such statements prepared whatever the batch sizes: one of 2,000 rows holds ~1.2 MB,
#: and a statement per batch size seen filled its cache (128) with tens of MB. Three
#: parameters a row at most: SQLite allows 32,766 a statement.
STATEMENT_ROWS = (16, 128, 512, 1024, 2048)
CLEAR_IN = "DELETE FROM temp.kms_in"
CLEAR_FLOOR = "DELETE FROM temp.kms_floor"
# the first of a (pair, ts) wins within a batch, as row by row INSERT OR IGNORE did
FILL = "INSERT OR IGNORE INTO temp.kms_in (pair, ts, data) VALUES {}"
#: what is stored already is no news: dropped from the batch (a redelivery)
OLD = ("DELETE FROM temp.kms_in WHERE EXISTS (SELECT 1 FROM main.settled s "
        "WHERE s.pair = kms_in.pair AND s.ts = kms_in.ts) OR EXISTS (SELECT 1 FROM main.recent r "
        "WHERE r.pair = kms_in.pair AND r.ts = kms_in.ts)")
INSERT = "INSERT INTO main.recent (pair, ts, data) SELECT pair, ts, data FROM temp.kms_in"
# ("WHERE true": SQLite's upsert after a SELECT needs it to tell ON CONFLICT from a join's ON)
BUMP = ("INSERT INTO main.pair_counts (pair, n) SELECT pair, count(*) FROM temp.kms_in "
         "WHERE true GROUP BY pair ON CONFLICT (pair) DO UPDATE SET n = n + excluded.n")
#: a batch known to be news (every row newer than its pair's newest stored row), straight
#: into ``recent`` (see ``_append``)
APPEND = "INSERT OR IGNORE INTO main.recent (pair, ts, data) VALUES {}"
#: the batch's pairs' counts as the writer computed them (it knew them before the batch)
SET_COUNTS = ("INSERT INTO main.pair_counts (pair, n) VALUES {} "
              "ON CONFLICT (pair) DO UPDATE SET n = excluded.n")
#: another connection committed since this one's last transaction when this changes
DATA_VERSION = "PRAGMA data_version"
#: what the writer keeps in memory of the pairs a checked batch wrote: each one's count and
#: newest ts (both tables' newest end, by their keys)
LEARN = ("SELECT c.pair, c.n, max(coalesce((SELECT max(s.ts) FROM main.settled s "
         "WHERE s.pair = c.pair), -9223372036854775808), coalesce((SELECT max(r.ts) "
         "FROM main.recent r WHERE r.pair = c.pair), -9223372036854775808)) "
         "FROM main.pair_counts c WHERE c.pair IN (SELECT pair FROM temp.kms_in)")
#: rows of this batch the cap does not keep: ``cap`` or more stored rows of the pair are newer
#: (for a row appended at the newest end, the normal case, the walk finds none at once; only
#: a late or very large batch walks up to ``cap`` index entries a row)
NOT_KEPT = ("SELECT count(*) FROM temp.kms_in i WHERE EXISTS (SELECT 1 FROM ("
             "SELECT ts FROM main.settled s WHERE s.pair = i.pair AND s.ts > i.ts UNION ALL "
             "SELECT ts FROM main.recent r WHERE r.pair = i.pair AND r.ts > i.ts) "
             "LIMIT 1 OFFSET ?1 - 1)")
#: the batch's pairs stored beyond the cap by more than the least slack (see ``slack``)
OVER = ("SELECT c.pair, c.n FROM main.pair_counts c WHERE c.n > ?1 "
         "AND c.pair IN (SELECT pair FROM temp.kms_in)")
#: (a compound SELECT ordered as a whole: SQLite merges the two tables' key orders, reading
#: no more than the offset's rows)
NTH_OLDEST = ("SELECT ts FROM main.settled WHERE pair = ?1 UNION ALL "
               "SELECT ts FROM main.recent WHERE pair = ?1 ORDER BY 1 ASC LIMIT 1 OFFSET ?2")
#: each trimmed pair's newest row to go (a statement for all of them)
FLOOR = "INSERT OR IGNORE INTO temp.kms_floor (pair, floor) VALUES {}"
TRIM = ("DELETE FROM main.settled WHERE (pair, ts) IN (SELECT s.pair, s.ts FROM "
         "temp.kms_floor f JOIN main.settled s ON s.pair = f.pair AND s.ts <= f.floor)")
TRIM_RECENT = ("DELETE FROM main.recent WHERE rowid IN (SELECT r.rowid FROM temp.kms_floor f "
                "JOIN main.recent r ON r.pair = f.pair AND r.ts <= f.floor)")
#: ``recent`` into ``settled`` in key order: each pair's rows land together at the end of its
#: range, a page or two a pair however many ticks they span
SETTLE = ("INSERT INTO main.settled (pair, ts, data) "
           "SELECT pair, ts, data FROM main.recent ORDER BY pair, ts")
CLEAR_RECENT = "DELETE FROM main.recent"
CAPPED = "UPDATE main.pair_counts SET n = ? WHERE pair IN (SELECT pair FROM temp.kms_floor)"
COUNT = "SELECT n FROM pair_counts WHERE pair = ?"
RANGE = {
    order: "SELECT ts, data FROM settled WHERE pair = ?1 AND ts BETWEEN ?2 AND ?3 UNION ALL "
    "SELECT ts, data FROM recent WHERE pair = ?1 AND ts BETWEEN ?2 AND ?3 "
    f"ORDER BY ts {order.upper()} LIMIT ?4"
    for order in ("desc", "asc")
}
