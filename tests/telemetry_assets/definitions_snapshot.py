"""The shape of the code location as data: what a restructure must leave unchanged.

After a deliberate change, rewrite the snapshot with
`python -m tests.telemetry_assets.definitions_snapshot \
    > tests/telemetry_assets/definitions_snapshot.json`;
the diff of that file is the review of the change.
"""

import json
from typing import Any

from telemetry_assets.definitions import defs


def snapshot() -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for node in graph.asset_nodes:
        partitions = node.partitions_def
        assets[node.key.to_user_string()] = {
            "group": node.group_name,
            "partitions": type(partitions).__name__ if partitions else None,
            "deps": sorted(key.to_user_string() for key in node.parent_keys),
            "kinds": sorted(node.kinds),
            "freshness": node.freshness_policy is not None,
        }
    checks = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {
            "blocking": spec.blocking,
            "severity": (spec.metadata or {}).get("severity"),
        }
    jobs = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        selected = job.asset_layer.executable_asset_keys if job.asset_layer else set()
        jobs[job.name] = sorted(key.to_user_string() for key in selected)
    repository = defs.get_repository_def()
    schedules = {
        schedule.name: {"job": schedule.job_name, "cron": schedule.cron_schedule}
        for schedule in repository.schedule_defs
    }
    sensors = {
        sensor.name: {"jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else [],
                      "default_status": sensor.default_status.value}
        for sensor in repository.sensor_defs
    }
    return {"assets": dict(sorted(assets.items())), "checks": dict(sorted(checks.items())),
            "jobs": dict(sorted(jobs.items())), "schedules": dict(sorted(schedules.items())),
            "sensors": dict(sorted(sensors.items()))}


if __name__ == "__main__":
    print(json.dumps(snapshot(), indent=2, sort_keys=True))
