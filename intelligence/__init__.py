"""Intelligence: indicators, models, strategies, event engine, backtester."""
