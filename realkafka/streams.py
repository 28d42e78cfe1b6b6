"""A Kafka Streams application on real Kafka (realkafka/java/StreamsApp.java, run in Java's source-file
mode against the streams-4.4 jars of scripts/install-realkafka): a streams group (KIP-1071,
group.protocol=streams) or a classic one, for the lag collection's tests."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from realkafka.install import NotInstalled, profile_dir

SOURCE = Path(__file__).parent / "java" / "StreamsApp.java"


def streams_classpath() -> str:
    return str(profile_dir("streams-4.4", "Kafka Streams 4.4") / "*")


class StreamsApp:
    """Counts SOURCE's records per value into SINK as application (group) `app_id`; started and stopped as a
    context manager or with start()/stop()."""

    def __init__(self, bootstrap: str, app_id: str, source: str, sink: str, protocol: str = "streams") -> None:
        self.bootstrap, self.app_id, self.source, self.sink, self.protocol = bootstrap, app_id, source, sink, protocol
        self.folder = Path(tempfile.mkdtemp(prefix="kafka-jmx-streams-"))
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._running = threading.Event()

    def start(self, timeout_s: float = 90.0) -> StreamsApp:
        props = self.folder / "app.properties"
        props.write_text(f"bootstrap.servers={self.bootstrap}\napplication.id={self.app_id}\n"
                         f"group.protocol={self.protocol}\nstate.dir={self.folder / 'state'}\n"
                         "commit.interval.ms=500\nnum.stream.threads=1\n"
                         # a classic Streams member does not leave the group on close: the coordinator drops it
                         # after its session timeout (45 s by default; the broker's minimum is 6 s)
                         + ("session.timeout.ms=6000\n" if self.protocol == "classic" else ""))
        java = shutil.which("java")
        if java is None:
            raise NotInstalled("java not found: install a JDK")
        self.process = subprocess.Popen([java, "-Xmx256m", "-cp", streams_classpath(), str(SOURCE), str(props),
                                         self.source, self.sink], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._running.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the Streams application {self.app_id} did not run within {timeout_s:.0f} s:\n"
                               + "\n".join(self.output[-30:]))
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line.rstrip())
            if line.strip() == "RUNNING":
                self._running.set()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Closes the application as its operator would (KafkaStreams.close: its members leave the group)."""
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> StreamsApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
