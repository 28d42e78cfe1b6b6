package kafkajmx;

import java.util.LinkedHashMap;
import java.util.Map;

/** The entry point Python drives through py4j: one NodeServer per Kafka node, one JVM for all. */
public final class Publisher {
    private final Map<String, NodeServer> nodes = new LinkedHashMap<>();
    private final Map<String, AutoCloseable> jolokia = new LinkedHashMap<>();

    public synchronized NodeServer addNode(String name, String host, int port, String passwordFile,
                                           String accessFile, String keystore, String keystorePassword)
            throws Exception {
        if (nodes.containsKey(name)) throw new IllegalArgumentException("node " + name + " already published");
        NodeServer node = new NodeServer(name, host, port, passwordFile, accessFile, keystore, keystorePassword);
        nodes.put(name, node);
        return node;
    }

    public synchronized NodeServer node(String name) {
        NodeServer node = nodes.get(name);
        if (node == null) throw new IllegalArgumentException("no published node " + name);
        return node;
    }

    /** Serve Jolokia's HTTP protocol for one node's MBeans on host:port (path /jolokia). */
    public synchronized String startJolokia(String name, String host, int port, String user, String password)
            throws Exception {
        Class<?> cls;
        try {
            // compiled only where Debian's libjolokia-core-java is installed
            cls = Class.forName("kafkajmx.JolokiaEndpoint");
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("Jolokia is not available: install Debian's libjolokia-core-java");
        }
        Object endpoint = cls.getDeclaredConstructor(javax.management.MBeanServer.class, String.class, int.class,
                        String.class, String.class)
                .newInstance(node(name).mbeanServer(), host, port, user, password);
        jolokia.put(name, (AutoCloseable) endpoint);
        return endpoint.toString();
    }

    public synchronized void stopJolokia(String name) throws Exception {
        AutoCloseable endpoint = jolokia.remove(name);
        if (endpoint != null) endpoint.close();
    }

    public synchronized void shutdown() throws Exception {
        for (AutoCloseable e : jolokia.values()) e.close();
        jolokia.clear();
        for (NodeServer n : nodes.values()) n.stop();
    }
}
