"""Browser tests: the real pages in a real Chromium (Playwright) against the real server."""
