-- The intraday U-shape: share of the day's volume per UTC hour, averaged over days (1h bars).
SELECT hour(from_unixtime(ts DIV 1000000000)) AS utc_hour,
       round(avg(volume / day_volume) * 100, 1) AS pct_of_day_volume
FROM (SELECT ts, volume, sum(volume) OVER (PARTITION BY symbol, dt) AS day_volume
      FROM curated.bars WHERE `interval` = '1h') hourly
GROUP BY hour(from_unixtime(ts DIV 1000000000))
ORDER BY utc_hour;
