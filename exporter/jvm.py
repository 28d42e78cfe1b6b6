"""JVM and process metrics of a JVM target under the names jmx_exporter's Java agent serves (the JVM
instrumentation of client_java 1.x; "0.x" selects the names of jmx_exporter 0.x for dashboards
that still use them), made from the java.lang and java.nio MBeans a collection reads and the
threads' states, so dashboards built on the agent work on a remote JMX or Jolokia target.

Not served, because only code inside the JVM sees them: jvm_memory_pool_allocated_bytes_total
(GC notifications) and process_resident_memory_bytes (/proc of the JVM's own process)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.exposition import FamilyChunk, series_line
from exporter.rules import MetricType
from exporter.sample import NO_VALUE, Collection, Threads

NAME_SETS = ("1.x", "0.x")
# what the families are made of; added to a config's include patterns when it has any
BEANS = ("java.lang:type=Memory", "java.lang:type=MemoryPool,*", "java.lang:type=GarbageCollector,*",
         "java.lang:type=Threading", "java.lang:type=ClassLoading", "java.lang:type=Compilation",
         "java.lang:type=OperatingSystem", "java.lang:type=Runtime", "java.nio:type=BufferPool,*")
THREAD_STATES = ("NEW", "RUNNABLE", "BLOCKED", "WAITING", "TIMED_WAITING", "TERMINATED", "UNKNOWN")
GAUGE, COUNTER, SUMMARY = MetricType.GAUGE, MetricType.COUNTER, MetricType.SUMMARY

Beans = dict[tuple[str, str], dict[str, Any]]          # (type, name) -> attribute (a.b inside CompositeData) -> value
Rows = list[tuple[str, dict[str, str], float]]         # (sample name, labels, value)


@dataclass(frozen=True)
class Family:
    names: dict[str, str]          # name set -> family name (absent: not in that set)
    type: MetricType
    help: str
    rows: Callable[[str, Beans, Threads | None], Rows]      # (the family name, beans, threads) -> samples


def _number(v: Any) -> float | None:
    if v is NO_VALUE or isinstance(v, (bool, str)) or v is None:
        return None
    return float(v)


def _one(bean: tuple[str, str], attr: str, scale: float = 1.0) -> Callable[[str, Beans, Threads | None], Rows]:
    def rows(name: str, beans: Beans, _: Threads | None) -> Rows:
        v = _number(beans.get(bean, {}).get(attr))
        return [] if v is None else [(name, {}, v * scale)]
    return rows


def _areas(key: str) -> Callable[[str, Beans, Threads | None], Rows]:
    def rows(name: str, beans: Beans, _: Threads | None) -> Rows:
        memory = beans.get(("Memory", ""), {})
        out = []
        for area, attr in (("heap", "HeapMemoryUsage"), ("nonheap", "NonHeapMemoryUsage")):
            v = _number(memory.get(f"{attr}.{key}"))
            if v is not None:
                out.append((name, {"area": area}, v))
        return out
    return rows


def _per_name(kind: str, attr: str, label: str, scale: float = 1.0) -> Callable[[str, Beans, Threads | None], Rows]:
    def rows(name: str, beans: Beans, _: Threads | None) -> Rows:
        out = []
        for (t, bean_name), attrs in sorted(beans.items()):
            v = _number(attrs.get(attr)) if t == kind else None
            if v is not None:
                out.append((name, {label: bean_name}, v * scale))
        return out
    return rows


def _gc(name: str, beans: Beans, _: Threads | None) -> Rows:
    out = []
    for (t, gc), attrs in sorted(beans.items()):
        count, millis = _number(attrs.get("CollectionCount")), _number(attrs.get("CollectionTime"))
        if t == "GarbageCollector" and count is not None and millis is not None:
            out += [(f"{name}_count", {"gc": gc}, count), (f"{name}_sum", {"gc": gc}, millis / 1000.0)]
    return out


def _states(name: str, _: Beans, threads: Threads | None) -> Rows:
    if threads is None:
        return []
    return [(name, {"state": s}, float(threads.states.get(s, 0))) for s in THREAD_STATES]


def _deadlocked(monitor: bool) -> Callable[[str, Beans, Threads | None], Rows]:
    def rows(name: str, _: Beans, threads: Threads | None) -> Rows:
        if threads is None:
            return []
        return [(name, {}, float(threads.deadlocked_monitor if monitor else threads.deadlocked))]
    return rows


def _runtime(name: str, beans: Beans, _: Threads | None) -> Rows:
    runtime = beans.get(("Runtime", ""))
    if runtime is None:
        return []
    props = {k.removeprefix("SystemProperties."): v for k, v in runtime.items() if k.startswith("SystemProperties.")}
    labels = {"runtime": str(props.get("java.runtime.name", runtime.get("VmName", ""))),
              "vendor": str(props.get("java.vm.vendor", runtime.get("VmVendor", ""))),
              "version": str(props.get("java.runtime.version", runtime.get("VmVersion", "")))}
    return [(name, labels, 1.0)]


BOTH = NAME_SETS
FAMILIES = [
    Family({"1.x": "jvm_memory_used_bytes", "0.x": "jvm_memory_bytes_used"}, GAUGE, "Used bytes of a JVM memory area.", _areas("used")),
    Family({"1.x": "jvm_memory_committed_bytes", "0.x": "jvm_memory_bytes_committed"}, GAUGE, "Committed bytes of a JVM memory area.", _areas("committed")),
    Family({"1.x": "jvm_memory_max_bytes", "0.x": "jvm_memory_bytes_max"}, GAUGE, "Max bytes of a JVM memory area (-1: undefined).", _areas("max")),
    Family({"1.x": "jvm_memory_init_bytes", "0.x": "jvm_memory_bytes_init"}, GAUGE, "Initial bytes of a JVM memory area.", _areas("init")),
    Family({"1.x": "jvm_memory_pool_used_bytes", "0.x": "jvm_memory_pool_bytes_used"}, GAUGE, "Used bytes of a JVM memory pool.", _per_name("MemoryPool", "Usage.used", "pool")),
    Family({"1.x": "jvm_memory_pool_committed_bytes", "0.x": "jvm_memory_pool_bytes_committed"}, GAUGE, "Committed bytes of a JVM memory pool.", _per_name("MemoryPool", "Usage.committed", "pool")),
    Family({"1.x": "jvm_memory_pool_max_bytes", "0.x": "jvm_memory_pool_bytes_max"}, GAUGE, "Max bytes of a JVM memory pool (-1: undefined).", _per_name("MemoryPool", "Usage.max", "pool")),
    Family({"1.x": "jvm_memory_pool_init_bytes", "0.x": "jvm_memory_pool_bytes_init"}, GAUGE, "Initial bytes of a JVM memory pool.", _per_name("MemoryPool", "Usage.init", "pool")),
    *[Family(dict.fromkeys(BOTH, f"jvm_memory_pool_collection_{k}_bytes"), GAUGE,
             f"{k.capitalize()} bytes of a JVM memory pool after its last collection.",
             _per_name("MemoryPool", f"CollectionUsage.{k}", "pool")) for k in ("used", "committed", "max", "init")],
    Family(dict.fromkeys(BOTH, "jvm_memory_objects_pending_finalization"), GAUGE, "Objects waiting in the finalizer queue.",
           _one(("Memory", ""), "ObjectPendingFinalizationCount")),
    Family(dict.fromkeys(BOTH, "jvm_gc_collection_seconds"), SUMMARY, "Time spent in a garbage collector's collections.", _gc),
    Family(dict.fromkeys(BOTH, "jvm_threads_current"), GAUGE, "Live threads, daemon and not.", _one(("Threading", ""), "ThreadCount")),
    Family(dict.fromkeys(BOTH, "jvm_threads_daemon"), GAUGE, "Live daemon threads.", _one(("Threading", ""), "DaemonThreadCount")),
    Family(dict.fromkeys(BOTH, "jvm_threads_peak"), GAUGE, "Most live threads since the JVM started.", _one(("Threading", ""), "PeakThreadCount")),
    Family(dict.fromkeys(BOTH, "jvm_threads_started_total"), COUNTER, "Threads started since the JVM started.",
           _one(("Threading", ""), "TotalStartedThreadCount")),
    Family(dict.fromkeys(BOTH, "jvm_threads_deadlocked"), GAUGE, "Threads deadlocked on monitors or ownable synchronizers.", _deadlocked(False)),
    Family(dict.fromkeys(BOTH, "jvm_threads_deadlocked_monitor"), GAUGE, "Threads deadlocked on object monitors.", _deadlocked(True)),
    Family(dict.fromkeys(BOTH, "jvm_threads_state"), GAUGE, "Threads by state.", _states),
    Family(dict.fromkeys(BOTH, "jvm_classes_currently_loaded"), GAUGE, "Classes loaded now.", _one(("ClassLoading", ""), "LoadedClassCount")),
    Family(dict.fromkeys(BOTH, "jvm_classes_loaded_total"), COUNTER, "Classes loaded since the JVM started.",
           _one(("ClassLoading", ""), "TotalLoadedClassCount")),
    Family(dict.fromkeys(BOTH, "jvm_classes_unloaded_total"), COUNTER, "Classes unloaded since the JVM started.",
           _one(("ClassLoading", ""), "UnloadedClassCount")),
    Family({"1.x": "jvm_compilation_time_seconds_total"}, COUNTER, "Time the JIT compiler spent compiling.",
           _one(("Compilation", ""), "TotalCompilationTime", 0.001)),
    Family(dict.fromkeys(BOTH, "jvm_buffer_pool_used_bytes"), GAUGE, "Bytes used by a buffer pool.", _per_name("BufferPool", "MemoryUsed", "pool")),
    Family(dict.fromkeys(BOTH, "jvm_buffer_pool_capacity_bytes"), GAUGE, "Bytes of capacity of a buffer pool.", _per_name("BufferPool", "TotalCapacity", "pool")),
    Family(dict.fromkeys(BOTH, "jvm_buffer_pool_used_buffers"), GAUGE, "Buffers of a buffer pool.", _per_name("BufferPool", "Count", "pool")),
    Family({"1.x": "jvm_runtime_info", "0.x": "jvm_info"}, GAUGE, "The JVM's runtime, vendor and version.", _runtime),
    Family(dict.fromkeys(BOTH, "process_cpu_seconds_total"), COUNTER, "CPU time the JVM's process used.",
           _one(("OperatingSystem", ""), "ProcessCpuTime", 1e-9)),
    Family(dict.fromkeys(BOTH, "process_start_time_seconds"), GAUGE, "When the JVM's process started, in seconds since the epoch.",
           _one(("Runtime", ""), "StartTime", 0.001)),
    Family(dict.fromkeys(BOTH, "process_open_fds"), GAUGE, "File descriptors the JVM's process has open.",
           _one(("OperatingSystem", ""), "OpenFileDescriptorCount")),
    Family(dict.fromkeys(BOTH, "process_max_fds"), GAUGE, "The JVM process's limit of open file descriptors.",
           _one(("OperatingSystem", ""), "MaxFileDescriptorCount")),
    Family(dict.fromkeys(BOTH, "process_virtual_memory_bytes"), GAUGE, "Virtual memory size of the JVM's process.",
           _one(("OperatingSystem", ""), "CommittedVirtualMemorySize")),
]


def family_names(names: str) -> set[str]:
    return {f.names[names] for f in FAMILIES if names in f.names}


def beans_of(collection: Collection) -> Beans:
    """The java.lang and java.nio beans of a collection, by (type, name); CompositeData keys joined with
    dots (HeapMemoryUsage.used), the Runtime's system properties as SystemProperties.<key>."""
    beans: Beans = {}
    for s in collection.samples:
        if s.domain != "java.lang" and s.domain != "java.nio":
            continue
        own = dict(s.bean_props)
        attrs = beans.setdefault((own.get("type", ""), own.get("name", "")), {})
        if s.attr == "SystemProperties" and s.key_props >= 0:
            attrs[f"SystemProperties.{dict(s.props).get('key', '')}"] = s.value
        else:
            attrs[".".join((s.attr, *s.path))] = s.value
    return beans


class JvmView:
    """Renders one target's JVM families; a target without java.lang:type=Runtime (not a JVM, say an
    embedded node's endpoint) gets none."""

    def __init__(self, names: str = "1.x", disabled: frozenset[str] = frozenset()) -> None:
        if names not in NAME_SETS:
            raise ValueError(f"JVM metric names: expected one of {', '.join(NAME_SETS)}, got {names!r}")
        self.families = [f for f in FAMILIES if names in f.names and f.names[names] not in disabled]
        self.names = names

    def render(self, collection: Collection, constant_labels: Mapping[str, str]) -> dict[str, FamilyChunk]:
        beans = beans_of(collection)
        if ("Runtime", "") not in beans:
            return {}
        chunks = {}
        for f in self.families:
            name = f.names[self.names]
            rows = f.rows(name, beans, collection.threads)
            if rows:
                lines = b"".join(series_line(sample, {**constant_labels, **labels}, value) for sample, labels, value in rows)
                chunks[name] = FamilyChunk(f.type, f.help, lines)
        return chunks
