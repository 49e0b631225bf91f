"""The Spark tests' cluster: started once per module, stopped after it."""

from collections.abc import Iterator

import pytest

from telemetry_core.spark import stop_all
from tests.spark.cluster import SparkCluster

# Short-lived JVMs on two cores: the optimising JIT compiler costs more CPU than it saves in a
# test's few minutes (a third of the cluster parity test's time here). Every JVM the tests
# start (the driver, the master, the workers, their executors) reads this variable.
QUICK_JVM = "-XX:TieredStopAtLevel=1"


@pytest.fixture(scope="module", autouse=True)
def quick_jvm() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAVA_TOOL_OPTIONS", QUICK_JVM)
        yield


@pytest.fixture(scope="module")
def spark_cluster(quick_jvm: None, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[SparkCluster]:
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster")).start()
    yield cluster
    stop_all()
    cluster.stop()
