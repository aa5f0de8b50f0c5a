-- Close-to-close daily returns, best and worst day per symbol (view curated.daily_returns).
SELECT symbol,
       round(max(ret) * 100, 3) AS best_day_pct,
       round(min(ret) * 100, 3) AS worst_day_pct,
       round(stddev_samp(log_ret) * sqrt(252) * 100, 1) AS annualised_vol_pct,
       count(ret) AS returns
FROM curated.daily_returns
GROUP BY symbol
ORDER BY symbol;
