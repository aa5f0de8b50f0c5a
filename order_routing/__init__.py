"""Order processing: OMS, pre-trade risk, FIX and IB routes, simulated exchange, warehouse log."""
