# The receiver fixtures of the ingest tests: the client is tested against the real receiver.
from tests.telemetry_ingest.conftest import landing, receiver  # noqa: F401
