"""Storage backends: one module each, behind the protocol in :mod:`.base`."""
