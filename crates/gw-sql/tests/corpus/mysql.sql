SELECT 1
-- ---
SELECT `DROP` FROM `orders`
-- ---
SELECT * FROM `db`.`Orders` WHERE `id` = 1
-- ---
SELECT 'a\'; DROP TABLE t; -- '
-- ---
SELECT "a\"; DROP TABLE t"
-- ---
SELECT 1 # ; DROP TABLE t
-- ---
SELECT 1 -- ; DROP TABLE t
-- ---
SELECT 1 --1; DROP TABLE t
-- ---
SELECT 1; DROP TABLE t
-- ---
SELECT /*!50000 1; DROP TABLE x */
-- ---
/*!40101 SET NAMES utf8 */
-- ---
SELECT 1 /*!99999 , sleep(10) */
-- ---
SELECT 1 /*M!100100 ; DROP TABLE t */
-- ---
SELECT '/*!' , 1
-- ---
SELECT SLEEP(5)
-- ---
SELECT BENCHMARK(1000000, MD5('x'))
-- ---
SELECT LOAD_FILE('/etc/passwd')
-- ---
SELECT GET_LOCK('l', 10), RELEASE_LOCK('l')
-- ---
SELECT * FROM t WHERE id = 1 AND sleep(1) = 0
-- ---
SELECT * FROM t INTO OUTFILE '/tmp/x'
-- ---
SELECT a, b INTO OUTFILE '/tmp/x' FIELDS TERMINATED BY ',' LINES TERMINATED BY '\n' FROM t
-- ---
SELECT * FROM t INTO DUMPFILE '/tmp/x'
-- ---
INSERT INTO t VALUES (1)
-- ---
INSERT INTO t SELECT * FROM u ON DUPLICATE KEY UPDATE a = 1
-- ---
INSERT INTO t SET a = 1, b = 2
-- ---
REPLACE INTO t VALUES (1)
-- ---
UPDATE t SET a = 1
-- ---
UPDATE t SET a = 1 WHERE id = 2
-- ---
UPDATE t SET a = 1 ORDER BY id LIMIT 1
-- ---
UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = t2.a WHERE t2.b = 1
-- ---
DELETE FROM t
-- ---
DELETE FROM t WHERE a = 1 LIMIT 1
-- ---
DELETE FROM t ORDER BY id LIMIT 10
-- ---
DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id
-- ---
DELETE t1 FROM t1 LEFT JOIN t2 ON t1.id = t2.id WHERE t2.id IS NULL
-- ---
DELETE FROM t1, t2 USING t1 JOIN t2 ON t1.id = t2.id
-- ---
TRUNCATE TABLE t
-- ---
DROP TABLE IF EXISTS `t`
-- ---
DROP DATABASE prod
-- ---
CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB
-- ---
CREATE TABLE t2 AS SELECT * FROM t
-- ---
CREATE PROCEDURE p() BEGIN DELETE FROM t; END
-- ---
CREATE USER 'bob'@'%' IDENTIFIED BY 'pw'
-- ---
ALTER TABLE t ADD COLUMN c INT
-- ---
RENAME TABLE a TO b, c TO d
-- ---
GRANT ALL ON db.* TO 'bob'@'%'
-- ---
REVOKE ALL ON db.* FROM 'bob'@'%'
-- ---
LOAD DATA INFILE '/etc/passwd' INTO TABLE t
-- ---
LOAD DATA LOCAL INFILE 'data.csv' REPLACE INTO TABLE db.t FIELDS TERMINATED BY ','
-- ---
SET @a = 1
-- ---
SET GLOBAL general_log = 1
-- ---
SET NAMES utf8mb4
-- ---
SET ROLE admin
-- ---
SET ROLE DEFAULT
-- ---
SHOW TABLES
-- ---
SHOW PROCESSLIST
-- ---
DESCRIBE t
-- ---
USE db
-- ---
START TRANSACTION; UPDATE t SET a = 1 WHERE id = 1; COMMIT
-- ---
XA START 'x'
-- ---
PREPARE s FROM 'DELETE FROM t'
-- ---
PREPARE s FROM @sql
-- ---
EXECUTE s USING @a
-- ---
DEALLOCATE PREPARE s
-- ---
CALL p(1)
-- ---
DO SLEEP(1)
-- ---
LOCK TABLES t WRITE, u READ
-- ---
UNLOCK TABLES
-- ---
OPTIMIZE TABLE t
-- ---
CHECK TABLE t, u
-- ---
REPAIR TABLE t
-- ---
ANALYZE TABLE t
-- ---
FLUSH PRIVILEGES
-- ---
HANDLER t OPEN
-- ---
HANDLER t READ FIRST
-- ---
HANDLER t CLOSE
-- ---
EXPLAIN SELECT * FROM t
-- ---
EXPLAIN ANALYZE SELECT * FROM t
-- ---
KILL 12
-- ---
SELECT * FROM t WHERE
-- ---
DELIMITER //
-- ---
SELECT 1 -- ; DROP TABLE t
-- ---
INSERT INTO t VALUES ('it\'s; fine')
-- ---
SELECT 1 --	; DROP TABLE t
-- ---
SELECT 1 -- ; DROP TABLE t
-- ---
sElEcT * fRoM T wHeRe A = 1
-- ---
SELECT 1 -- ; DROP TABLE t
-- ---
SELECT a INTO @x FROM t
-- ---
EXPLAIN FORMAT=TREE DELETE FROM t
-- ---
INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT 1 FROM z)
