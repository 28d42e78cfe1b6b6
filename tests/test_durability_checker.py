"""The durability checker: acks=all with min ISR 2 loses nothing under random faults; acks=1 shows
the loss Kafka documents; the report and the replay command."""
import json

import pytest

from broker import durability
from kafka_jmx.cli import main


@pytest.mark.slow
def test_acks_all_loses_no_acknowledged_record_under_random_faults():
    report, results = durability.run(8, 200, "all")
    assert report.schedules == 8 and report.acked > 20_000
    assert report.lost == 0 and report.duplicated == 0 and report.out_of_order == 0
    assert report.max_visible_above_hw == 0 and report.offset_regressions == 0
    assert report.failing_seeds == []
    assert all(r.faults for r in results)            # every schedule really had faults


@pytest.mark.slow
def test_acks_1_loses_what_a_dying_leader_acknowledged():
    # seeds 4 and 5 kill a leader before its followers fetched (the runs are deterministic; found by running
    # seeds 1-12 after the raft timing changed)
    report, _ = durability.run(5, 1, "1")
    assert report.lost > 0 and {4, 5} <= set(report.lossy_seeds)
    assert report.failing_seeds == []                # loss is what acks=1 allows: not a failure
    assert report.max_visible_above_hw == 0          # but consumers still never read it


@pytest.mark.slow
def test_a_schedule_replays_exactly():
    a, b = durability.run_schedule(7, "all"), durability.run_schedule(7, "all")
    assert (a.acked, a.consumed, a.faults) == (b.acked, b.consumed, b.faults)


@pytest.mark.slow
def test_cli_json_report(capsys):
    assert main(["durability", "--schedules", "2", "--seed", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"schedules", "acked", "lost", "duplicated", "max_visible_above_hw", "failing_seeds"} <= set(report)
    assert report["schedules"] == 2 and report["lost"] == 0 and report["max_visible_above_hw"] == 0
