-- TEMPORARY placeholder (deleted at merge): migration 015 is notifications'.
SELECT 1;
