from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.telemetry_ingest.servers import Receiver


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def receiver(tmp_path: Path, landing: Path) -> Iterator[Receiver]:
    server = Receiver(landing, tmp_path / "receiver.log").start()
    yield server
    server.stop()


@pytest.fixture
def small_receiver(tmp_path: Path, landing: Path) -> Iterator[Receiver]:
    """A receiver whose request size limit is 20 kB."""
    server = Receiver(
        landing, tmp_path / "receiver.log", TELEMETRY_INGEST_MAX_BODY_BYTES="20000"
    ).start()
    yield server
    server.stop()
