"""The simulated exchange: ``book`` (limit order book + market maker), ``venue`` (FIX requests on
the books), ``acceptor`` (the QuickFIX acceptor, ``SimExchange``), ``commands`` (``tradelake exchange``)."""
