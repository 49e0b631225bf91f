"""Each test gets its own servers: all three start in well under a second."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.telemetry_notify.servers import Alertmanager, Prosody, SmtpServer


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = Alertmanager(tmp_path / "alertmanager").start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def prosody(tmp_path: Path) -> Iterator[Prosody]:
    server = Prosody(tmp_path / "prosody").start()
    yield server
    server.stop()
