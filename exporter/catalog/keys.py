"""Zabbix item keys, one spelling for the templates the generators write and the values the trapper sends:
a key the exporter sends must be the key the template's item or discovery rule has."""
from __future__ import annotations

TOPIC_DISCOVERY = "kafka.discovery.topics"
"""The trapper templates' topic discovery (the JMX templates discover topics from the beans themselves)."""
GROUP_DISCOVERY = {"group": "kafka.discovery.groups", "group_topic": "kafka.discovery.group_topics"}
"""The consumer-group template's discovery rules: per group, and per group and topic."""


def jmx_key(object_name: str, attribute: str) -> str:
    """An MBean attribute's item: the Java gateway's key, which the trapper items share."""
    return f'jmx["{object_name}","{attribute}"]'


def cluster_key(item_id: str) -> str:
    """A calculated item of the cluster host."""
    return f"kafka.cluster.{item_id}"


def bean_discovery_key(metric_id: str) -> str:
    """The trapper discovery rule of a metric with one bean per broker, topic, ... (`lld: bean`)."""
    return f"kafka.discovery.beans[{metric_id}]"


def with_parameters(base: str, values: tuple[str, ...]) -> str:
    """base["v1","v2"], quoted as Zabbix item key parameters are."""
    return f"{base}[{','.join(quoted(v) for v in values)}]"


def quoted(value: str) -> str:
    """A key parameter in double quotes, its own quotes escaped."""
    return '"' + value.replace('"', '\\"') + '"'
