-- TEMPORARY: a placeholder for the job queue migration (013) so this branch's
-- 014 applies without a gap; deleted at merge, where the real 013 lands.
SELECT 1;
