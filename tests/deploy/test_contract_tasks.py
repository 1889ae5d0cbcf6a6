"""Back-office tasks on every deployment: the single node's tests, imported."""

from ..test_tasks import (client,  # noqa: F401
                          test_a_same_day_pickup_waits_for_its_card_and_is_then_called_in_its_place,
                          test_double_presses_and_retries_are_safe)
