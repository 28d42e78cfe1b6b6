from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]     # the checkout: its committed templates and dashboards

KC = "kafka.controller:type=KafkaController,name="
RM = "kafka.server:type=ReplicaManager,name="


def wait(predicate, timeout: float = 120.0, step: float = 0.5):
    """predicate's first truthy result within timeout seconds (polled every step), else None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(step)
    return None


class ManualClock:
    """A clock the test moves (exporter.clock.Clock): backoff, settling and intervals without waiting."""

    def __init__(self, epoch: float = 1_764_000_000.0) -> None:
        self.elapsed = 1_000.0
        self.epoch = epoch

    def monotonic(self) -> float:
        return self.elapsed

    def time(self) -> float:
        return self.epoch + self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


def make_cluster(brokers: int = 5, controllers: int = 3, seed: int = 7, config: dict | None = None,
                 topics: tuple = (("orders", 12, 3, 2),), combined: int = 0) -> Cluster:
    """A started cluster (virtual clock) with every broker unfenced and the topics created."""
    c = Cluster(brokers=brokers, controllers=controllers, seed=seed, config=config, combined=combined)
    c.start()
    assert c.run_until(c.ready, 30_000), "cluster did not become ready"
    for name, partitions, rf, min_isr in topics:
        c.create_topic(name, partitions, rf, min_isr)
    assert c.run_until(lambda: all(c.topic_exists(t[0]) for t in topics), 10_000)
    return c


@contextlib.contextmanager
def wall_clock_cluster(brokers: int, controllers: int, seed: int, config: dict,
                       topic: tuple[str, int, int, int], kafka_version: str = "4.1") -> Iterator[Cluster]:
    """A cluster (of that Kafka line) running on the wall clock in its own thread, ready, with one topic (name,
    partitions, replication factor, min ISR); stopped on the way out."""
    from broker.clock import WallClock
    cluster = Cluster(brokers=brokers, controllers=controllers, seed=seed, config=config, clock=WallClock(),
                      kafka_version=kafka_version)
    stop = threading.Event()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            cluster.sched.run(until_ms=float("inf"), stop=stop)
        except BaseException as e:          # a simulation error: every later request would just time out
            crashed.append(e)
            raise
    cluster.start()
    threading.Thread(target=run, daemon=True).start()
    try:
        assert wait(lambda: cluster.ready(), 30)
        with cluster.sched.lock:
            cluster.create_topic(*topic)
        assert wait(lambda: cluster.topic_exists(topic[0]), 30)
        yield cluster
    finally:
        stop.set()
    if crashed:
        raise AssertionError(f"the cluster stopped on an error: {crashed[0]!r}") from crashed[0]


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster()


@pytest.fixture(scope="module")
def faulted_cluster():
    """A cluster where every catalog MBean has appeared: traffic, and one NOT_ENOUGH_REPLICAS."""
    c = make_cluster()
    p = c.producer("p")
    for i in range(20):
        p.send("orders", i, key=str(i).encode())
    c.consumer("c", "g", ["orders"], {"auto.offset.reset": "earliest"})
    c.run_for(10_000)
    state = c.active_controller().image.partition("orders", 0)
    for f in [r for r in state.replicas if r != state.leader]:
        c.kill(f"broker-{f}")
    c.run_for(12_000)
    c.producer("strict", {"acks": "all", "delivery.timeout.ms": 2_000}).send("orders", "x", partition=0)
    c.run_for(3_000)
    return c


def _zabbix_stack(version: str):
    from jvm_support import unavailable
    from zabbix_stack import LAYOUTS, missing_packages, running_stack
    missing = missing_packages(version)
    if missing:
        unavailable(f"the Zabbix {version} test services need: {' '.join(missing)} "
                    f"({LAYOUTS[version].install} installs them)")
    return running_stack(version)


def _templates_imported(stack):
    """The stack's API, logged in, with the generated templates of its own export format imported."""
    from pyzabbix import ZabbixAPI

    from exporter.provision import import_rules
    api = ZabbixAPI(stack.api_url)
    api.login("Admin", "zabbix")
    source = (ROOT / "templates" / "zabbix" / f"kafka-4x-{stack.version}.yaml").read_text()
    assert api.configuration["import"](format="yaml", source=source, rules=import_rules(api.api_version())) is True
    return api


@pytest.fixture(scope="session")
def zabbix():
    """A real Zabbix 6.0 (server, Java gateway, API) for the whole test session."""
    with _zabbix_stack("6.0") as stack:
        yield stack


@pytest.fixture(scope="session")
def zabbix_api(zabbix):
    """The Zabbix 6.0 API, logged in, with the generated 6.0 templates imported."""
    return _templates_imported(zabbix)


@pytest.fixture(scope="session")
def zabbix70():
    """A real Zabbix 7.0 LTS (Debian 13's, in its root) for the whole test session."""
    with _zabbix_stack("7.0") as stack:
        yield stack


@pytest.fixture(scope="session")
def zabbix70_api(zabbix70):
    """The Zabbix 7.0 API, logged in, with the generated 7.0 templates imported."""
    return _templates_imported(zabbix70)


ZABBIX_VERSIONS = ("7.0", "6.0")        # 7.0 LTS first: what most installations run


@pytest.fixture(scope="session", params=ZABBIX_VERSIONS)
def zbx(request):
    """Each real Zabbix in turn, for the tests that prove the product on every version we support."""
    return request.getfixturevalue("zabbix70" if request.param == "7.0" else "zabbix")


@pytest.fixture(scope="session")
def zbx_api(zbx, request):
    """zbx's API, logged in, with the templates of its export format imported."""
    return request.getfixturevalue("zabbix70_api" if zbx.version == "7.0" else "zabbix_api")


# tests that use these fixtures start real services (see the `services` marker in pyproject.toml)
SERVICE_FIXTURES = {"zabbix", "zabbix_api", "zabbix70", "zabbix70_api", "zbx", "zbx_api", "kafka", "alertmanager_inbox"}
# ... or a JVM (the `slow` marker): make test-fast starts none
SLOW_FIXTURES = {"published", "secured"}
JVM_PROGRAMS = {"java", "javac"}


@contextlib.contextmanager
def _no_jvm(item: pytest.Item) -> Iterator[None]:
    """Fails a test that is neither slow nor services and starts a JVM, its fixtures' included."""
    if item.get_closest_marker("slow") or item.get_closest_marker("services"):
        yield
        return
    real = subprocess.Popen._execute_child      # every child process, however Popen was imported

    def guarded(self, args, executable, *rest):
        first = executable or (args if isinstance(args, (str, bytes)) else args[0])
        program = os.path.basename(os.fsdecode(first)).split()[0]
        if program in JVM_PROGRAMS:
            raise AssertionError(f"{item.nodeid} starts a JVM ({program}) but is not marked slow "
                                 "(make test-fast starts none): mark it @pytest.mark.slow")
        return real(self, args, executable, *rest)

    subprocess.Popen._execute_child = guarded
    try:
        yield
    finally:
        subprocess.Popen._execute_child = real


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _no_jvm(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _no_jvm(item):
        return (yield)


# `make test` runs two pytest-xdist workers (the suite mostly waits on real services and wall clocks). Each
# module runs whole on one worker (its module fixtures start once). The modules that use the Zabbix stack share
# one worker and stack, with the rehearsals last (those taking both CPU slots last of all); the other worker
# starts with the real-Kafka modules (FIRST) and is done before the rehearsals begin, which run on the wall
# clock beside nothing else. Measured: with the Zabbix modules that need no wall clock moved to the other worker
# (stacks of their own), 36:40 instead of 41:47, but the rehearsals then ran beside its work and fired what they
# should not (a quorum leader lost on the embedded cluster, two real clusters side by side); three workers with
# the rehearsals on their own took 30 minutes instead of 40, with every rehearsal firing what it should not.
ZABBIX_FIXTURES = {"zabbix", "zabbix_api", "zabbix70", "zabbix70_api", "zbx", "zbx_api"}
REHEARSALS = "test_rehearsal.py"
FIRST = ("zabbix", "test_conformance.py", "test_real_kafka.py", "test_kafka_engine.py", "test_combined_kafka.py",
         "test_kafka_protocol.py", "test_kafka_versions.py", "test_promql_dropin.py", "test_jmx_exporter_parity.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class HeavyFirst(LoadGroupScheduling):
        def _assign_work_unit(self, node) -> None:
            if not getattr(self, "ordered", False):      # the first assignment: the queue is complete
                self.ordered = True
                rank = {group: i for i, group in enumerate(FIRST)}
                units = sorted(self.workqueue.items(), key=lambda unit: rank.get(unit[0], len(rank)))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)
    return HeavyFirst(config, log)


def _run_order(item: pytest.Item) -> tuple[bool, bool]:
    """The rehearsals last, those taking both CPU slots last of all: by then the other worker's real-Kafka
    modules are done, and neither waits for the other's slots."""
    slots = item.get_closest_marker("cpu_slots")
    return item.path.name == REHEARSALS, item.path.name == REHEARSALS and bool(slots) and slots.args[0] >= 2


@pytest.hookimpl(tryfirst=True)         # before xdist's, which reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    zabbix_modules = {item.path.name for item in items if ZABBIX_FIXTURES & set(getattr(item, "fixturenames", ()))}
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        module = item.path.name
        item.add_marker(pytest.mark.xdist_group("zabbix" if module in zabbix_modules else module))
    items.sort(key=_run_order)              # stable: the rest keep their order


class CpuSlots:
    """Two cores: at most two real Kafka clusters (a JVM each node) run at once across the workers, and a test
    that takes both runs with none beside it (measured: the wall-clock embedded cluster beside real Kafka's
    JVMs was starved into a controller election). File locks, so a worker that dies releases its slot."""

    SLOTS = 2

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(exist_ok=True)

    @contextlib.contextmanager
    def hold(self, n: int) -> Iterator[None]:
        held = []
        with open(self.folder / "intent", "a+") as intent:
            if n >= self.SLOTS:
                fcntl.flock(intent, fcntl.LOCK_EX)          # newcomers wait behind the one that needs all
                for i in range(self.SLOTS):
                    slot = open(self.folder / f"slot{i}", "a+")
                    fcntl.flock(slot, fcntl.LOCK_EX)
                    held.append(slot)
                fcntl.flock(intent, fcntl.LOCK_UN)
            while not held:
                fcntl.flock(intent, fcntl.LOCK_SH)
                fcntl.flock(intent, fcntl.LOCK_UN)
                for i in range(self.SLOTS):
                    slot = open(self.folder / f"slot{i}", "a+")
                    try:
                        fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        slot.close()
                        continue
                    held.append(slot)
                    break
                else:
                    time.sleep(0.5)
        try:
            yield
        finally:
            for slot in held:
                slot.close()


def _slots() -> CpuSlots | None:
    """The run's slots, shared by its xdist workers; None without workers (one test at a time anyway)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    return CpuSlots(Path(tempfile.gettempdir()) / f"kafka-jmx-cpu-{run}") if run else None


@pytest.fixture(scope="module", autouse=True)
def _module_cpu_slots(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module whose fixtures run real Kafka clusters (CPU_SLOTS = 1) keeps its slot while they live."""
    n, slots = getattr(request.module, "CPU_SLOTS", 0), _slots()
    if not n or slots is None:
        yield
        return
    with slots.hold(n):
        yield


@pytest.fixture(autouse=True)
def _test_cpu_slots(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked cpu_slots itself (not through its module) holds them for its run."""
    marker = next((m for m in request.node.own_markers if m.name == "cpu_slots"), None)
    slots = _slots()
    if marker is None or slots is None:
        yield
        return
    with slots.hold(marker.args[0]):
        yield
