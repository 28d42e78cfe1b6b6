"""Writes every artifact generated from the catalog, or checks that the committed ones are current."""
from __future__ import annotations

from pathlib import Path

from exporter.catalog import alerts, grafana, zabbix
from exporter.catalog.model import CATALOG_PATH, load_catalog

ROOT = CATALOG_PATH.parents[1]


def artifacts() -> dict[Path, str]:
    catalog = load_catalog()
    dashboards = {ROOT / "dashboards" / "grafana" / f"{uid}.json": grafana.serialize(d)
                  for uid, d in grafana.render(catalog).items()}
    return {
        **dashboards,
        ROOT / "templates" / "zabbix" / "kafka-4x-6.0.yaml": zabbix.serialize(zabbix.render(catalog, "6.0")),
        ROOT / "templates" / "zabbix" / "kafka-4x-7.0.yaml": zabbix.serialize(zabbix.render(catalog, "7.0")),
        ROOT / "templates" / "prometheus" / "kafka-4x-alerts.yml": alerts.serialize(alerts.render(catalog)),
    }


def write() -> list[Path]:
    changed = []
    for path, text in artifacts().items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale() -> list[Path]:
    return [path for path, text in artifacts().items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]
