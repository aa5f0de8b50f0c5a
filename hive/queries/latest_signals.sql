-- The latest 1-hour indicators per symbol: trend (SMA/EMA), momentum (RSI, MACD), volatility.
SELECT f.symbol, f.dt, round(f.close, 2) AS close, round(f.sma_20, 2) AS sma_20,
       round(f.ema_20, 2) AS ema_20, round(f.rsi_14, 1) AS rsi_14, round(f.macd_hist, 4) AS macd_hist,
       round(f.zscore_20, 2) AS zscore_20, round(f.atr_14, 3) AS atr_14
FROM features.bar_features f
JOIN (SELECT symbol, max(ts) AS ts FROM features.bar_features WHERE `interval` = '1h' GROUP BY symbol) latest
  ON f.symbol = latest.symbol AND f.ts = latest.ts
WHERE f.`interval` = '1h'
ORDER BY f.symbol;
