"""Configuration files: the demo office and the message catalogs."""
