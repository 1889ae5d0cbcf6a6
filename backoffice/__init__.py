"""The back-office panel: card preparation and post-issuance work lists for staff, on the public API."""
