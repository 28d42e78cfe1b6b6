package kafkajmx;

import java.lang.instrument.Instrumentation;
import java.util.Set;
import javax.management.MBeanServer;
import javax.management.MBeanServerConnection;
import org.jolokia.backend.executor.MBeanServerExecutor;
import org.jolokia.detector.ServerDetector;
import org.jolokia.detector.ServerHandle;

/**
 * Jolokia finds MBeanServers through detectors (listed in META-INF/detectors). Each node's
 * BackendManager is built while PENDING holds that node's MBeanServer, so every Jolokia endpoint
 * sees its own node's Kafka beans (plus the JVM's platform beans, as a real Kafka JVM would).
 */
public final class NodeDetector implements ServerDetector {
    static final ThreadLocal<MBeanServer> PENDING = new ThreadLocal<>();
    private final MBeanServer server = PENDING.get();

    public NodeDetector() {
    }

    public NodeDetector(int order) {
    }

    @Override
    public ServerHandle detect(MBeanServerExecutor executor) {
        return null;
    }

    @Override
    public void addMBeanServers(Set<MBeanServerConnection> servers) {
        if (server != null) servers.add(server);
    }

    @Override
    public void jvmAgentStartup(Instrumentation instrumentation) {
    }
}
