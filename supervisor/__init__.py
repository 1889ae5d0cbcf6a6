"""The supervisor console (業務責任者): every office live, outage mode, the day's close-out, on the public API."""
