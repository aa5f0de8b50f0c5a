-- VWAP per symbol and day, from the 1-minute bars (view curated.daily_vwap).
SELECT symbol, dt, round(vwap, 4) AS vwap, volume, trade_count
FROM curated.daily_vwap
WHERE dt BETWEEN DATE '2026-01-05' AND DATE '2026-01-09' AND symbol IN ('AAPL', 'MSFT')
ORDER BY symbol, dt;
