"""The Spark tests' cluster: started once per module, stopped after it."""

from collections.abc import Iterator

import pytest

from telemetry_core.spark import stop_all
from tests.spark.cluster import SparkCluster


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster")).start()
    yield cluster
    stop_all()
    cluster.stop()
