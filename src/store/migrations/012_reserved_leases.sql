-- TEMPORARY: a placeholder for the leases migration (012) so this branch's
-- 013 applies without a gap; deleted at merge, where the real 012 lands.
SELECT 1;
