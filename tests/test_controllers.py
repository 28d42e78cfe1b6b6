"""KRaft: the quorum elects one active controller; it fails over; without a majority there is none."""
from conftest import KC, make_cluster

ACC = KC + "ActiveControllerCount"
NEW = KC + "NewActiveControllersCount"
RAFT = "kafka.server:type=raft-metrics"


def test_exactly_one_active_controller(cluster):
    assert sum(cluster.values(ACC).values()) == 1
    states = cluster.values(RAFT, "current-state")
    assert sorted(states[c] for c in cluster.controllers) == ["follower", "follower", "leader"]
    assert all(states[b] == "observer" for b in cluster.brokers)
    leaders = set(cluster.values(RAFT, "current-leader").values())
    assert len(leaders) == 1 and leaders.pop() == cluster.active_controller().node_id


def test_killing_the_active_controller_elects_another(cluster):
    old = cluster.active_controller()
    before = cluster.values(NEW)
    epoch = old.raft.epoch
    cluster.kill("active-controller")
    assert cluster.run_until(lambda: cluster.active_controller() is not None, 10_000)
    cluster.run_for(1_000)
    new = cluster.active_controller()
    assert new.name != old.name and new.raft.epoch > epoch
    assert sum(cluster.values(ACC).values()) == 1
    after = cluster.values(NEW)
    assert all(after[c] > before[c] for c in after)          # every live controller counted the election
    assert cluster.value(new.name, RAFT, "election-latency-max") > 0
    failover = cluster.failovers[-1]
    # detection (fetch timeout 2 s) plus an election (1-2 s timeouts): a few seconds, not more
    assert 2_000 <= failover.latency_ms <= 6_000
    # brokers follow the new leader
    assert cluster.run_until(lambda: set(cluster.values(RAFT, "current-leader").values()) == {new.node_id}, 5_000)


def test_no_active_controller_without_a_majority():
    c = make_cluster(topics=())
    standbys = [n for n, node in c.controllers.items() if not node.active]
    old = c.kill("active-controller")
    c.kill(standbys[0])
    survivor = c.controllers[standbys[1]]
    states = set()
    for _ in range(30):
        c.run_for(500)
        states.add(survivor.raft.metrics_state())
        assert c.active_controller() is None and sum(c.values(ACC).values()) == 0
        # as on real 4.x: nobody forgets the old leader. The survivor's pre-votes fail and it goes back
        # to following it; brokers stay observers of it
        assert set(c.values(RAFT, "current-leader").values()) == {c.controllers[old].node_id}
        assert {b.raft.metrics_state() for b in c.brokers.values()} == {"observer"}
    # (prospective-voted when it voted for that leader in this epoch)
    assert "follower" in states and states - {"follower"} <= {"prospective", "prospective-voted"} and len(states) > 1
    c.restart(standbys[0])
    assert c.run_until(lambda: c.active_controller() is not None, 15_000)
    assert sum(c.values(ACC).values()) == 1


def test_isolated_active_controller_resigns_and_the_majority_elects_a_new_one(cluster):
    old = cluster.active_controller().name
    cluster.isolate(old)
    cluster.run_for(10_000)
    active = [n for n, v in cluster.values(ACC).items() if v == 1]
    assert len(active) == 1 and active[0] != old
    cluster.heal(old)
    cluster.run_for(5_000)
    assert sum(cluster.values(ACC).values()) == 1
    assert cluster.controllers[old].raft.metrics_state() == "follower"


def test_controller_metrics_agree_on_every_controller(cluster):
    for name in ("GlobalTopicCount", "GlobalPartitionCount", "ActiveBrokerCount", "OfflinePartitionsCount"):
        values = set(cluster.values(KC + name).values())
        assert len(values) == 1, name
    assert cluster.values(KC + "GlobalTopicCount")["controller-1001"] == 1
    assert cluster.values(KC + "GlobalPartitionCount")["controller-1001"] == 12
    lags = cluster.values(KC + "LastAppliedRecordLagMs")
    # the active one: time since its last write, at most the NoOp interval (metadata.max.idle.interval.ms)
    assert 0 <= lags[cluster.active_controller().name] <= 500
    # standbys trail by at most the NoOp interval plus a fetch round trip
    assert all(0 <= lag <= 1_000 for lag in lags.values())
    committed = cluster.values(KC + "LastCommittedRecordOffset")
    assert max(committed.values()) - min(committed.values()) <= 3


def test_a_metadata_record_nobody_can_replay_halts_the_standbys_and_brokers_count_it(cluster):
    c = cluster
    active = c.active_controller()
    standbys = [n for n in c.controllers.values() if n is not active]
    registered = {n.name: n.mbeans for n in c.servers.values()}
    c.corrupt_metadata("active-controller")
    c.run_for(2_000)
    # brokers: a load error (MetadataBatchLoader), not fatal; they keep serving
    for b in c.brokers.values():
        counters = b.mbeans.read("kafka.server:type=broker-metadata-metrics")
        assert b.alive and counters["metadata-load-error-count"] == 1 and counters["metadata-apply-error-count"] == 0
    # standby controllers: the replay fault is fatal, counted first (in the registry the process had)
    for s in standbys:
        assert not s.alive and registered[s.name].read(KC + "MetadataErrorCount")["Value"] == 1, s.name
    assert active.mbeans.read(KC + "MetadataErrorCount")["Value"] == 0
    # the active controller lost its majority: it resigns, and a restarted standby halts again
    c.run_for(10_000)
    assert c.active_controller() is None
    c.restart(standbys[0].name)
    c.run_for(5_000)
    assert not standbys[0].alive


def test_a_preferred_leader_election_moves_leadership_back_after_a_restart():
    c = make_cluster(brokers=3, config={"auto.leader.rebalance.enable": False})
    imbalance = lambda: c.active_controller().image.counts()["PreferredReplicaImbalanceCount"]
    c.kill("broker-1")
    c.run_for(10_000)
    c.restart("broker-1")
    isr_full = lambda: all(len(p.isr) == 3 for p in c.active_controller().image.topics["orders"].partitions)
    assert c.run_until(isr_full, 30_000)
    assert imbalance() > 0                    # broker-1 came back a follower of everything it led
    moved = c.elect_preferred_leaders()
    c.run_for(2_000)
    assert moved > 0 and imbalance() == 0
    assert c.elect_preferred_leaders() == 0   # nothing left to move


def test_kafka_41_broker_registration_and_heartbeat_gauges(cluster):
    c = cluster
    active = c.active_controller()
    c.run_for(2_000)
    for ctl in c.controllers.values():
        states = {b: ctl.mbeans.read(KC + f"BrokerRegistrationState,broker={b}")["Value"] for b in range(1, 6)}
        assert states == {b: 30 for b in range(1, 6)}
        assert ctl.mbeans.read(KC + "ControlledShutdownBrokerCount")["Value"] == 0
        has_heartbeats = f"{KC}TimeSinceLastHeartbeatReceivedMs,broker=1" in ctl.mbeans
        assert has_heartbeats == (ctl is active)          # the active controller's own view
    assert active.mbeans.read(KC + "TimeSinceLastHeartbeatReceivedMs,broker=1")["Value"] < 1_000
    c.kill("broker-1")
    c.run_for(20_000)
    assert active.mbeans.read(KC + "TimeSinceLastHeartbeatReceivedMs,broker=1")["Value"] == 9_000   # capped
    assert {ctl.mbeans.read(KC + "BrokerRegistrationState,broker=1")["Value"] for ctl in c.controllers.values()} == {10}
    # the gauges follow the leadership
    c.kill(active.name)
    c.run_for(10_000)
    new = c.active_controller()
    assert f"{KC}TimeSinceLastHeartbeatReceivedMs,broker=2" in new.mbeans
    # a restarted controller loads the brokers it knew as a snapshot: no per-broker gauge for them,
    # and a known broker's re-registration is a change, not a new broker
    c.restart(active.name)
    c.restart("broker-1")
    c.run_for(20_000)
    restarted = c.controllers[active.name]
    assert restarted.alive and "ActiveControllerCount" in str(list(restarted.mbeans.items()))
    assert not [on for on, _ in restarted.mbeans.items() if "BrokerRegistrationState" in str(on)]
    assert new.mbeans.read(KC + "BrokerRegistrationState,broker=1")["Value"] == 30


def test_kip_853_raft_metrics_on_voters_and_the_leader(cluster):
    c = cluster
    c.run_for(2_000)
    leader = c.active_controller()
    for ctl in c.controllers.values():
        raft = ctl.mbeans.read(RAFT)
        assert raft["number-of-voters"] == 3
        assert ("number-of-observers" in raft) == (ctl is leader)
    assert leader.mbeans.read(RAFT)["number-of-observers"] == 5 and leader.mbeans.read(RAFT)["uncommitted-voter-change"] == 0
    assert "number-of-voters" not in c.brokers["broker-1"].mbeans.read(RAFT)
