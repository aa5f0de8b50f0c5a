-- Reconciliation: raw rows landed per day against curated (deduplicated) ticks.
SELECT r.dt, r.raw_rows, c.curated_rows, r.raw_rows - c.curated_rows AS duplicates_or_out_of_day
FROM (SELECT dt, count(*) AS raw_rows FROM raw.md_trades GROUP BY dt) r
JOIN (SELECT dt, count(*) AS curated_rows FROM curated.ticks GROUP BY dt) c ON r.dt = c.dt
ORDER BY r.dt;
