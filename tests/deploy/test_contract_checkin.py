"""Check-in of booked visitors on every deployment: the single node's tests, imported."""

from ..test_checkin import (client, test_a_late_visitor_becomes_a_walk_in_from_the_check_in,  # noqa: F401
                            test_on_time_the_visitor_gets_a_booked_ticket_once)
