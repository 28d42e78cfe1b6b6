"""Starting the embedded cluster's JMX (and Jolokia) endpoints for the demo and `cluster run`."""
from __future__ import annotations

import sys
from typing import IO

from broker.jmx.publisher import JmxPublisher
from broker.simulation import Simulation
from kafka_common.jvm import JvmError


def start_publisher(sim: Simulation, settings: dict | None, out: IO[str] = sys.stdout) -> JmxPublisher | None:
    """Publish the cluster over JMX; a missing JDK stops JMX, not the cluster."""
    if settings is None:
        return None
    publisher = JmxPublisher(sim.cluster, **settings)
    try:
        publisher.start(background=True)
    except JvmError as e:
        print(f"kafka-jmx: JMX endpoints not started: {e}", file=sys.stderr)
        return None
    jolokia = publisher.jolokia_urls()
    for name, url in publisher.urls().items():
        print(f"{name:16} {url}" + (f"  {jolokia[name]}" if name in jolokia else ""), file=out, flush=True)
    return publisher
