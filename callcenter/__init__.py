"""The call-centre desk (予約受付): operators book, change and cancel for callers, on the staff API."""
