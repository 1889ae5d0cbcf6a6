"""The citizen's booking page (来庁予約): book, see, change or cancel a slot, on the public API."""
