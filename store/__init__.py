"""Persistence behind one StreamStore interface (memory and file stores). Nothing here knows about actors."""
