"""The office's rules in plain Python: tickets, calling policy, wait estimation. No I/O here."""
