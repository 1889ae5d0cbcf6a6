"""Sign-in limits and status-link guessing on every deployment: the single node's tests, imported."""

from ..test_abuse import (test_failed_sign_ins_slow_then_lock_the_user_name_and_are_audited,  # noqa: F401
                          test_guessing_status_tokens_is_slowed_per_address_never_locked)
