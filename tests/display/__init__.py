"""Tests of the lobby call display and its announcement audio."""
