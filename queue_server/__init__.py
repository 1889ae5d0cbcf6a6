"""The madoguchi server: numbered tickets, atomic calls and live events on Redis."""
