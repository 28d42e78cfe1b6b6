package kafkajmx;

import java.io.FileInputStream;
import java.lang.management.ManagementFactory;
import java.rmi.registry.LocateRegistry;
import java.rmi.registry.Registry;
import java.rmi.server.UnicastRemoteObject;
import java.security.KeyStore;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.management.MBeanServer;
import javax.management.MBeanServerFactory;
import javax.management.ObjectName;
import javax.management.remote.JMXConnectorServer;
import javax.management.remote.JMXServiceURL;
import javax.management.remote.rmi.RMIConnectorServer;
import javax.management.remote.rmi.RMIJRMPServerImpl;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.rmi.ssl.SslRMIClientSocketFactory;

/**
 * One Kafka node's JMX presence: its own MBeanServer (Kafka beans published from Python plus the
 * JVM's java.lang beans) and its own RMI registry + connector on one port, like a Kafka process
 * started with KAFKA_JMX_OPTS. stop() closes the port, so clients get "connection refused" as from
 * a dead broker; start() opens it again.
 */
public final class NodeServer {
    private final String name;
    private final String host;
    private final int port;
    private final String passwordFile;
    private final String accessFile;
    private final SSLContext ssl;
    private final MBeanServer mbs = MBeanServerFactory.newMBeanServer();
    private final Map<String, SnapshotBean> beans = new HashMap<>();
    private Registry registry;
    private JMXConnectorServer connector;

    NodeServer(String name, String host, int port, String passwordFile, String accessFile,
               String keystore, String keystorePassword) throws Exception {
        this.name = name;
        this.host = host;
        this.port = port;
        this.passwordFile = passwordFile;
        this.accessFile = accessFile;
        this.ssl = keystore == null ? null : sslContext(keystore, keystorePassword);
        MBeanServer platform = ManagementFactory.getPlatformMBeanServer();
        for (ObjectName on : platform.queryNames(new ObjectName("java.lang:*"), null)) {
            mbs.registerMBean(new ForwardingBean(platform, on), on);
        }
    }

    private static SSLContext sslContext(String keystore, String password) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        try (FileInputStream in = new FileInputStream(keystore)) {
            ks.load(in, password.toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password.toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    public MBeanServer mbeanServer() {
        return mbs;
    }

    public String url() {
        return "service:jmx:rmi:///jndi/rmi://" + host + ":" + port + "/jmxrmi";
    }

    public synchronized boolean isRunning() {
        return connector != null && connector.isActive();
    }

    public synchronized void start() throws Exception {
        if (isRunning()) return;
        LoopbackSocketFactory ssf = new LoopbackSocketFactory(host, ssl);
        SslRMIClientSocketFactory csf = ssl == null ? null : new SslRMIClientSocketFactory();
        registry = LocateRegistry.createRegistry(port, csf, ssf);
        Map<String, Object> env = new HashMap<>();
        if (passwordFile != null) {
            env.put("jmx.remote.x.password.file", passwordFile);
        }
        // the connector's stub is bound into our own registry object directly (as the JDK's
        // ConnectorBootstrap does), so this JVM never has to be a TLS client of itself
        RMIJRMPServerImpl server = new RMIJRMPServerImpl(port, csf, ssf, env);
        connector = new RMIConnectorServer(new JMXServiceURL("rmi", host, port), env, server, mbs);
        if (accessFile != null) {
            connector.setMBeanServerForwarder(new com.sun.jmx.remote.security.MBeanServerFileAccessController(accessFile));
        }
        connector.start();
        registry.bind("jmxrmi", server.toStub());
    }

    public synchronized void stop() throws Exception {
        if (connector != null) {
            connector.stop();
            connector = null;
        }
        if (registry != null) {
            UnicastRemoteObject.unexportObject(registry, true);
            registry = null;
        }
    }

    public synchronized int beanCount() {
        return beans.size();
    }

    /**
     * Apply one batch from Python. Lines (tab-separated, escaped):
     * D objectName className attr=type... (register), X objectName (unregister),
     * V objectName value... (tagged values in the registered attribute order).
     * Returns "defined updated removed errors" counts; the first error message follows on a second line.
     */
    public synchronized String apply(String payload) {
        int defined = 0, updated = 0, removed = 0, errors = 0;
        String firstError = "";
        int start = 0;
        while (start < payload.length()) {
            int end = payload.indexOf('\n', start);
            if (end < 0) end = payload.length();
            String line = payload.substring(start, end);
            start = end + 1;
            if (line.isEmpty()) continue;
            try {
                List<String> f = Codec.fields(line);
                String kind = f.get(0);
                String on = f.get(1);
                if (kind.equals("D")) {
                    int n = f.size() - 3;
                    String[] names = new String[n];
                    String[] types = new String[n];
                    for (int i = 0; i < n; i++) {
                        String spec = f.get(i + 3);
                        int eq = spec.lastIndexOf('=');
                        names[i] = spec.substring(0, eq);
                        types[i] = spec.substring(eq + 1);
                    }
                    SnapshotBean bean = new SnapshotBean(f.get(2), names, types, "Kafka MBean of " + name);
                    ObjectName objectName = new ObjectName(on);
                    if (beans.containsKey(on)) mbs.unregisterMBean(objectName);
                    mbs.registerMBean(bean, objectName);
                    beans.put(on, bean);
                    defined++;
                } else if (kind.equals("X")) {
                    if (beans.remove(on) != null) {
                        mbs.unregisterMBean(new ObjectName(on));
                        removed++;
                    }
                } else if (kind.equals("V")) {
                    SnapshotBean bean = beans.get(on);
                    if (bean == null) throw new IllegalArgumentException("values for undefined MBean " + on);
                    Object[] values = new Object[f.size() - 2];
                    for (int i = 0; i < values.length; i++) values[i] = Codec.decode(f.get(i + 2));
                    if (values.length != bean.size()) {
                        throw new IllegalArgumentException(on + ": " + values.length + " values for " + bean.size() + " attributes");
                    }
                    bean.set(values);
                    updated++;
                } else {
                    throw new IllegalArgumentException("unknown line kind " + kind);
                }
            } catch (Exception e) {
                if (errors++ == 0) firstError = e.toString();
            }
        }
        return defined + " " + updated + " " + removed + " " + errors + "\n" + firstError;
    }
}
