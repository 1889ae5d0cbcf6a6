"""Bookings (book, change, cancel; the call centre) on every deployment: the single node's tests, imported."""

from ..test_bookings_api import (booking_client, operator,  # noqa: F401
                                 test_a_visitor_books_sees_changes_and_cancels_with_the_secret_link,
                                 test_the_call_centre_books_for_a_caller_and_sees_the_reference)
