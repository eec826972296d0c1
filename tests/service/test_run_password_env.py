"""`password_env` (RUN.md §1.1, §2): the variable is read when `run` starts. Not set, it is a
start-up error naming it (exit 2, no traceback, no worker started); set, its value is the
password the broker checks; never shown in the run's logs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.brokers import Mosquitto
from tests.conftest import varpulis_command
from tests.service.live import LiveRun
from tests.service.programs import MQTT_PASSWORD, PASSWORD_VARIABLE, program_file

SECRET = "Plant-7 s3cret"


class PasswordMosquitto(Mosquitto):
    """A mosquitto that lets in only user `plant` with SECRET: no anonymous client."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        tool = shutil.which("mosquitto_passwd") or pytest.fail(
            "mosquitto_passwd not found: it comes with mosquitto (apt-get install mosquitto)", pytrace=False)
        passwords = workdir / "passwords"
        subprocess.run([tool, "-b", "-c", str(passwords), "plant", SECRET], check=True, timeout=10,
                       capture_output=True)
        passwords.chmod(0o600)
        self.config.write_text(self.config.read_text().replace(
            "allow_anonymous true\n", f"allow_anonymous false\npassword_file {passwords}\n"))


def _environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != PASSWORD_VARIABLE}
    return {**env, **extra}


def test_a_password_env_that_is_not_set_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    program = program_file(tmp_path, MQTT_PASSWORD, port=1883)
    result = subprocess.run([*varpulis_command(), "run", str(program)], env=_environment(), capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert f"connector 'Broker': environment variable {PASSWORD_VARIABLE} (password_env) is not set" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "Run Complete" not in result.stderr and result.stdout == ""


def test_a_password_env_that_is_set_is_the_password_the_broker_checks(tmp_path: Path) -> None:
    broker = PasswordMosquitto(tmp_path)
    broker.start()
    program = program_file(tmp_path, MQTT_PASSWORD, port=broker.port)
    try:
        with LiveRun(program, env=_environment(**{PASSWORD_VARIABLE: SECRET})) as run:
            run.wait_for_err("connector Broker: subscribed, receiving")
            status, records = run.stop()
    finally:
        broker.stop()
    assert status == 0, run.stderr
    assert records == []
    assert "Run Complete" in run.stderr
    assert "refused" not in run.stderr and SECRET not in run.stderr and "s3cret" not in run.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_refused_password_is_logged_without_it(tmp_path: Path, log_format: str) -> None:
    """The broker refuses the password: the worker holding the client says so (once, in the log
    format asked for), and the password appears nowhere on standard error."""
    broker = PasswordMosquitto(tmp_path)
    broker.start()
    wrong = "Wrong-9 s3cret"
    program = program_file(tmp_path, MQTT_PASSWORD, port=broker.port)
    try:
        with LiveRun(program, "--log-format", log_format, env=_environment(**{PASSWORD_VARIABLE: wrong})) as run:
            run.wait_for_err("connector Broker: broker refused the connection")
            status, _records = run.stop()
    finally:
        broker.stop()
    assert status == 0, run.stderr
    assert wrong not in run.stderr and "s3cret" not in run.stderr and "Wrong-9" not in run.stderr
    assert run.stderr.count("broker refused the connection") == 1  # not once per retry
    if log_format == "json":
        [refused] = [json.loads(line) for line in run.err_lines if "refused" in line]
        assert (refused["event"], refused["connector"], refused["level"]) == ("connector_refused", "Broker", "WARNING")
        assert refused["port"] == broker.port
        assert refused["pid"] != run.proc.pid  # from the worker of context `a`, forked after the configuration
