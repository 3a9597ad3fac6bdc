"""The plan inspector page (``/inspect``): routes in :mod:`server.inspect.routes`."""
