"""Writes every artifact generated from the catalog, or checks that the committed ones are current."""
from __future__ import annotations

from pathlib import Path

from exporter.catalog import alertmanager, alerts, docs, zabbix
from exporter.catalog.model import load_catalog


def artifacts(root: Path) -> dict[Path, str]:
    """Every generated file under root, as the repository lays them out (templates/, dashboards/)."""
    from exporter.catalog import grafana  # the Grafana SDK comes with the lab extra
    catalog = load_catalog()
    dashboards = {root / "dashboards" / "grafana" / f"{uid}.json": grafana.serialize(d)
                  for uid, d in grafana.render(catalog).items()}
    return {
        **dashboards,
        **{root / "templates" / "zabbix" / f"kafka-4x-{v}.yaml": zabbix.serialize(zabbix.render(catalog, v))
           for v in zabbix.VERSIONS},
        root / "templates" / "prometheus" / "kafka-4x-alerts.yml": alerts.serialize(alerts.render(catalog)),
        root / "templates" / "prometheus" / "alertmanager-kafka.yml":
            alertmanager.serialize(alertmanager.render(catalog), catalog),
        root / "templates" / "zabbix" / "ITEMS.md": docs.render(catalog),
    }


def write(root: Path) -> list[Path]:
    changed = []
    for path, text in artifacts(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale(root: Path) -> list[Path]:
    return [path for path, text in artifacts(root).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]
