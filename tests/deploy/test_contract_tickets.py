"""The ticket lifecycle on every deployment: the same tests as on the single node (imported, so they
stay one text), run against the single node, Sentinel and the cluster (``conftest.make_client``)."""

from ..test_api_lifecycle import (test_call_a_specific_number_and_cancel,  # noqa: F401
                                  test_hand_over_keeps_number_and_place_and_only_city_staff_serve_it,
                                  test_no_show_needs_the_configured_recalls,
                                  test_ticket_goes_from_issue_to_done_and_every_step_is_an_event,
                                  test_visitor_status_shows_people_ahead)
