"""Tests of the offline speech for call announcements."""
