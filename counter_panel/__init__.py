"""The counter panel: the staff page at each counter, on the public API."""
