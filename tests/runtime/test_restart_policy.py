"""The restart policy (RUN.md §6) decides per death: every branch, the backoff and the window."""

from __future__ import annotations

import os
import signal

import pytest

from varpulis_mp.runtime.restart_policy import (
    BootFailure,
    Death,
    GiveUp,
    Ignore,
    Restart,
    RestartMode,
    RestartPolicy,
    StopRun,
    describe_status,
)


def killed(sig: int) -> int:
    """The wait status of a process killed by `sig`."""
    return sig


def exited(code: int) -> int:
    return code << 8


def crash(status: int = killed(signal.SIGKILL)) -> Death:
    return Death(status=status, was_ready=True, asked_to_stop=False)


def test_wait_statuses_are_read_as_the_kernel_writes_them() -> None:
    assert os.WIFSIGNALED(killed(signal.SIGKILL)) and os.WTERMSIG(killed(signal.SIGKILL)) == signal.SIGKILL
    assert os.WIFEXITED(exited(3)) and os.WEXITSTATUS(exited(3)) == 3


def test_describe_status_names_signals_and_exit_statuses() -> None:
    assert describe_status(killed(signal.SIGKILL)) == "killed by SIGKILL"
    assert describe_status(killed(signal.SIGSEGV)) == "killed by SIGSEGV"
    assert describe_status(exited(3)) == "exited with status 3"
    assert describe_status(exited(0)) == "exited with status 0"
    assert describe_status(killed(100)) == "killed by signal 100"  # no name for it


def test_first_restart_is_immediate() -> None:
    assert RestartPolicy().decide("compute", 10.0, crash()) == Restart(delay_s=0.0, attempt=1)


def test_later_restarts_wait_a_full_jitter_exponential_delay() -> None:
    policy = RestartPolicy(max_restarts=100, random=lambda: 1.0)
    delays = [policy.decide("compute", 10.0 + i, crash()) for i in range(6)]
    assert [d.delay_s for d in delays if isinstance(d, Restart)] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8, 1.6])
    assert [d.attempt for d in delays if isinstance(d, Restart)] == [1, 2, 3, 4, 5, 6]


def test_the_delay_is_drawn_between_zero_and_its_ceiling() -> None:
    draws = iter([0.5, 0.25])
    policy = RestartPolicy(random=lambda: next(draws))
    policy.decide("compute", 0.0, crash())
    assert policy.decide("compute", 1.0, crash()) == Restart(delay_s=pytest.approx(0.05), attempt=2)
    assert policy.decide("compute", 2.0, crash()) == Restart(delay_s=pytest.approx(0.05), attempt=3)


def test_the_delay_never_exceeds_max_delay() -> None:
    policy = RestartPolicy(max_restarts=10_000, window_s=1.0, random=lambda: 1.0)
    decisions = [policy.decide("compute", float(i), crash()) for i in range(2000)]
    assert all(isinstance(d, Restart) and d.delay_s <= 30.0 for d in decisions)
    last = decisions[-1]
    assert isinstance(last, Restart) and last.delay_s == 30.0


def test_sixty_seconds_of_good_health_reset_the_backoff() -> None:
    policy = RestartPolicy(random=lambda: 1.0)
    policy.decide("compute", 0.0, crash())
    policy.healthy("compute", 0.5)
    second = policy.decide("compute", 10.0, crash())
    assert isinstance(second, Restart) and second.delay_s > 0  # ready for 9.5 s only: no reset
    policy.healthy("compute", 10.5)
    third = policy.decide("compute", 70.5, crash())
    assert third == Restart(delay_s=0.0, attempt=1)  # healthy for 60 s; the first two left the window


def test_more_than_max_restarts_within_the_window_gives_up() -> None:
    policy = RestartPolicy(max_restarts=3, window_s=60.0)
    for t in (0.0, 1.0, 2.0):
        assert isinstance(policy.decide("compute", t, crash()), Restart)
    decision = policy.decide("compute", 3.0, crash(exited(3)))
    assert isinstance(decision, GiveUp)
    assert "context 'compute'" in decision.reason
    assert "exited with status 3" in decision.reason
    assert "--max-restarts 3" in decision.reason


def test_restarts_older_than_the_window_do_not_count() -> None:
    policy = RestartPolicy(max_restarts=2, window_s=10.0)
    assert isinstance(policy.decide("compute", 0.0, crash()), Restart)
    assert isinstance(policy.decide("compute", 5.0, crash()), Restart)
    decision = policy.decide("compute", 10.0, crash())  # the restart at 0.0 has left the window
    assert isinstance(decision, Restart) and decision.attempt == 2
    assert isinstance(policy.decide("compute", 11.0, crash()), GiveUp)


def test_each_context_has_its_own_count() -> None:
    policy = RestartPolicy(max_restarts=1)
    assert isinstance(policy.decide("ingest", 0.0, crash()), Restart)
    assert policy.decide("compute", 0.0, crash()) == Restart(delay_s=0.0, attempt=1)
    assert isinstance(policy.decide("ingest", 1.0, crash()), GiveUp)


def test_zero_max_restarts_gives_up_at_the_first_death() -> None:
    decision = RestartPolicy(max_restarts=0).decide("compute", 0.0, crash())
    assert isinstance(decision, GiveUp)


@pytest.mark.parametrize("mode", list(RestartMode))
def test_a_clean_exit_that_was_asked_for_is_ignored(mode: RestartMode) -> None:
    death = Death(status=exited(0), was_ready=True, asked_to_stop=True)
    assert RestartPolicy(mode=mode).decide("compute", 0.0, death) == Ignore()


@pytest.mark.parametrize("mode", list(RestartMode))
def test_a_death_before_ready_is_a_boot_failure(mode: RestartMode) -> None:
    death = Death(status=exited(70), was_ready=False, asked_to_stop=False)
    decision = RestartPolicy(mode=mode).decide("compute", 0.0, death)
    assert decision == BootFailure("context 'compute' worker exited with status 70 before it was ready")


def test_on_failure_restarts_a_signal_and_a_non_zero_status() -> None:
    policy = RestartPolicy(mode=RestartMode.ON_FAILURE)
    assert isinstance(policy.decide("a", 0.0, crash(killed(signal.SIGSEGV))), Restart)
    assert isinstance(policy.decide("b", 0.0, crash(exited(1))), Restart)


def test_on_failure_ignores_an_unasked_exit_0() -> None:
    assert RestartPolicy(mode=RestartMode.ON_FAILURE).decide("compute", 0.0, crash(exited(0))) == Ignore()


def test_always_restarts_an_unasked_exit_0() -> None:
    decision = RestartPolicy(mode=RestartMode.ALWAYS).decide("compute", 0.0, crash(exited(0)))
    assert decision == Restart(delay_s=0.0, attempt=1)


def test_never_stops_the_run_and_names_the_context_and_the_cause() -> None:
    decision = RestartPolicy(mode=RestartMode.NEVER).decide("compute", 0.0, crash())
    assert decision == StopRun("context 'compute' worker killed by SIGKILL (--restart never)")


def test_never_ignores_an_unasked_exit_0() -> None:
    assert RestartPolicy(mode=RestartMode.NEVER).decide("compute", 0.0, crash(exited(0))) == Ignore()


def test_a_crash_while_stopping_is_still_a_crash() -> None:
    death = Death(status=killed(signal.SIGKILL), was_ready=True, asked_to_stop=True)
    assert isinstance(RestartPolicy().decide("compute", 0.0, death), Restart)


def test_modes_are_spelled_as_on_the_command_line() -> None:
    assert [m.value for m in RestartMode] == ["on-failure", "always", "never"]
