-- 007_transfer_status_check (PostgreSQL): nothing to change. The SQLite
-- migration of this number rebuilds transfers so that its status CHECK is
-- not an IN list (SQLite builds a temporary b-tree for one per statement);
-- PostgreSQL evaluates the IN list directly. The number is taken here too so
-- both back ends count their migrations alike.
SELECT 1;
