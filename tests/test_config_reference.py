"""docs/operators/configuration.md against the loader: its example is a valid configuration, and every key
the loader accepts is described there, so the reference cannot fall behind the schema."""
import re

import pytest
from conftest import ROOT

from exporter.config import load_config
from kafka_common.yamlconf import Doc

REFERENCE = ROOT / "docs" / "operators" / "configuration.md"
FILES = ("server.crt", "server.key", "zabbix.psk", "jmx.pw", "truststore.jks", "ca.pem", "client.pem", "client.key")
ENV = ("EXPORTER_PASSWORD", "TRUSTSTORE_PASSWORD", "JOLOKIA_PASSWORD", "KEY_PASSWORD", "KAFKA_PASSWORD")


def example() -> str:
    m = re.search(r"<!-- config: example -->\n```yaml\n(.*?)```", REFERENCE.read_text(), re.S)
    assert m, f"{REFERENCE} has no example block"
    return m.group(1)


@pytest.fixture
def accepted(tmp_path, monkeypatch) -> set[str]:
    """Every key the loader allows in any mapping it reads while loading the example (which uses every section)."""
    for name in FILES:
        (tmp_path / name).write_text("0123456789abcdef0123456789abcdef\n")
    for name in ENV:
        monkeypatch.setenv(name, "secret")
    keys: set[str] = set()
    real = Doc.mapping

    def mapping(self, value, path, allowed):
        keys.update(allowed)
        return real(self, value, path, allowed)

    monkeypatch.setattr(Doc, "mapping", mapping)
    config = load_config(example(), str(tmp_path / "exporter.yml"))
    assert [t.name for t in config.targets] == ["controller-1001", "broker-1"] and config.kafka is not None
    assert config.zabbix is not None and config.prometheus.cert
    return keys


def test_the_example_loads_and_every_accepted_key_is_described(accepted):
    text = REFERENCE.read_text()
    described = set(re.findall(r"`([a-z_]+)", text)) | set(re.findall(r"^\s*-?\s*([a-z_]+):", text, re.M))
    # a secret's KEY_env and KEY_file are described once, in the paragraph on secrets
    secrets = {k for k in accepted if f"{k}_env" in accepted and f"{k}_file" in accepted}
    assert {"password", "psk", "key_password", "truststore_password"} <= secrets and "`password_env: NAME`" in text
    undescribed = {k for k in accepted - described if re.sub(r"_(env|file)$", "", k) not in secrets}
    assert len(accepted) > 50
    assert sorted(undescribed) == []
