package kafkajmx;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.management.Attribute;
import javax.management.AttributeList;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.openmbean.CompositeData;
import javax.management.openmbean.TabularData;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;
import javax.rmi.ssl.SslRMIClientSocketFactory;

/**
 * Reads every matching MBean of a remote JVM in one call from Python: the per-bean RMI round trips
 * happen here, inside the JVM. Attribute names come from MBeanInfo, cached per bean and fetched only
 * for beans that appeared. Output lines (tab-separated, escaped):
 * S objectName attribute taggedValue    one value (tag j: CompositeData/TabularData as JSON)
 * E reason count                                            attributes skipped, by reason
 */
public final class BulkReader {
    private static final class Conn {
        final JMXConnector connector;
        final MBeanServerConnection mbsc;
        final Map<ObjectName, String[]> attributes = new ConcurrentHashMap<>();

        Conn(JMXConnector connector) throws Exception {
            this.connector = connector;
            this.mbsc = connector.getMBeanServerConnection();
        }
    }

    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "kafka-jmx-reader");
        t.setDaemon(true);
        return t;
    });
    private final Map<Integer, Conn> conns = new ConcurrentHashMap<>();
    private final AtomicInteger ids = new AtomicInteger();

    private <T> T withTimeout(java.util.concurrent.Callable<T> call, long timeoutMs, Runnable onTimeout)
            throws Exception {
        Future<T> f = pool.submit(call);
        try {
            return f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            f.cancel(true);
            if (onTimeout != null) onTimeout.run();
            throw new TimeoutException("no answer within " + timeoutMs + " ms");
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Exception) throw (Exception) cause;
            throw e;
        }
    }

    /** Connect to a JMX service URL; user null for no authentication. Returns a connection id. */
    public int connect(String url, String user, String password, boolean ssl, long timeoutMs) throws Exception {
        Map<String, Object> env = new HashMap<>();
        if (user != null) env.put(JMXConnector.CREDENTIALS, new String[]{user, password});
        if (ssl) env.put("com.sun.jndi.rmi.factory.socket", new SslRMIClientSocketFactory());
        JMXServiceURL serviceUrl = new JMXServiceURL(url);
        JMXConnector connector = withTimeout(() -> JMXConnectorFactory.connect(serviceUrl, env), timeoutMs, null);
        Conn conn = new Conn(connector);
        int id = ids.incrementAndGet();
        conns.put(id, conn);
        return id;
    }

    public void close(int id) {
        Conn conn = conns.remove(id);
        if (conn != null) {
            try {
                conn.connector.close();
            } catch (Exception ignored) {
                // the connection is being dropped because it broke; nothing more to do
            }
        }
    }

    /** includes and excludes: ObjectName patterns, one per line (no includes: every MBean). threads:
     *  also the JVM's threads per state and its deadlocks, which only ThreadMXBean's operations tell. */
    public String read(int id, String includes, String excludes, boolean threads, long timeoutMs) throws Exception {
        Conn conn = conns.get(id);
        if (conn == null) throw new IllegalStateException("connection " + id + " is closed");
        String[] in = includes.isEmpty() ? new String[0] : includes.split("\n");
        String[] ex = excludes.isEmpty() ? new String[0] : excludes.split("\n");
        return withTimeout(() -> threads ? readAll(conn, in, ex) + threadStates(conn) : readAll(conn, in, ex),
                           timeoutMs, () -> close(id));
    }

    /** Lines T state count (UNKNOWN: a thread that ended between the two calls) and D kind count for
     *  findDeadlockedThreads and findMonitorDeadlockedThreads; nothing from an MBean server without
     *  a JVM's Threading bean (an embedded node's endpoint). */
    private static String threadStates(Conn conn) throws Exception {
        ObjectName threading = new ObjectName("java.lang:type=Threading");
        StringBuilder out = new StringBuilder();
        try {
            long[] ids = (long[]) conn.mbsc.getAttribute(threading, "AllThreadIds");
            Object[] infos = (Object[]) conn.mbsc.invoke(threading, "getThreadInfo", new Object[]{ids, 0},
                                                          new String[]{"[J", "int"});
            Map<String, Integer> counts = new TreeMap<>();
            for (Object info : infos) {
                String state = info == null ? "UNKNOWN" : String.valueOf(((CompositeData) info).get("threadState"));
                counts.merge(state, 1, Integer::sum);
            }
            for (Map.Entry<String, Integer> e : counts.entrySet()) {
                out.append("T\t").append(e.getKey()).append('\t').append(e.getValue()).append('\n');
            }
            for (String op : new String[]{"findDeadlockedThreads", "findMonitorDeadlockedThreads"}) {
                long[] found = (long[]) conn.mbsc.invoke(threading, op, new Object[0], new String[0]);
                out.append("D\t").append(op).append('\t').append(found == null ? 0 : found.length).append('\n');
            }
        } catch (javax.management.InstanceNotFoundException e) {
            return "";
        } catch (javax.management.JMException e) {
            // a JVM that refuses the operations: its other metrics are still read
            return "E\tthread states unreadable (" + Codec.escape(String.valueOf(e.getMessage())) + ")\t1\n";
        }
        return out.toString();
    }

    /** Every matching bean's readable attributes with their declared Java types (MBeanInfo), one
     *  line each: objectName, attribute, type (tab-separated, escaped). For comparing JVMs. */
    public String describe(int id, String includes, long timeoutMs) throws Exception {
        Conn conn = conns.get(id);
        if (conn == null) throw new IllegalStateException("connection " + id + " is closed");
        String[] in = includes.isEmpty() ? new String[]{"*:*"} : includes.split("\n");
        return withTimeout(() -> {
            Set<ObjectName> names = new LinkedHashSet<>();
            for (String pattern : in) names.addAll(conn.mbsc.queryNames(new ObjectName(pattern), null));
            return inParallel(new ArrayList<>(names), slice -> describeBeans(conn, slice)).toString();
        }, timeoutMs, () -> close(id));
    }

    /** Beans are read by this many threads at once: JMX has no multi-bean read, so the RMI round
     *  trips (one per bean) are overlapped instead. */
    private static final int PARALLELISM = 4;

    private String readAll(Conn conn, String[] includes, String[] excludes) throws Exception {
        Set<ObjectName> names = new LinkedHashSet<>();
        for (String pattern : includes.length == 0 ? new String[]{"*:*"} : includes) {
            names.addAll(conn.mbsc.queryNames(new ObjectName(pattern), null));
        }
        for (String pattern : excludes) {
            ObjectName ex = new ObjectName(pattern);
            names.removeIf(ex::apply);
        }
        conn.attributes.keySet().retainAll(names);
        List<Map<String, Integer>> skips = new ArrayList<>();
        StringBuilder out = inParallel(new ArrayList<>(names), slice -> {
            Map<String, Integer> skipped = new TreeMap<>();
            synchronized (skips) {
                skips.add(skipped);
            }
            return readBeans(conn, slice, skipped);
        });
        Map<String, Integer> skipped = new TreeMap<>();
        for (Map<String, Integer> m : skips) m.forEach((k, v) -> skipped.merge(k, v, Integer::sum));
        for (Map.Entry<String, Integer> e : skipped.entrySet()) {
            out.append("E\t").append(Codec.escape(e.getKey())).append('\t').append(e.getValue()).append('\n');
        }
        return out.toString();
    }

    private interface Part {
        StringBuilder run(List<ObjectName> slice) throws Exception;
    }

    /** The beans in PARALLELISM slices, each on its own thread; the parts' output in the beans' order. */
    private StringBuilder inParallel(List<ObjectName> all, Part part) throws Exception {
        int chunk = Math.max(1, (all.size() + PARALLELISM - 1) / PARALLELISM);
        List<Future<StringBuilder>> parts = new ArrayList<>();
        for (int from = 0; from < all.size(); from += chunk) {
            List<ObjectName> slice = all.subList(from, Math.min(all.size(), from + chunk));
            parts.add(pool.submit(() -> part.run(slice)));
        }
        StringBuilder out = new StringBuilder(all.size() * 200);
        try {
            for (Future<StringBuilder> f : parts) out.append(f.get());
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Exception) throw (Exception) cause;
            throw e;
        } finally {
            for (Future<StringBuilder> f : parts) f.cancel(true);
        }
        return out;
    }

    private static StringBuilder describeBeans(Conn conn, List<ObjectName> names) throws Exception {
        StringBuilder out = new StringBuilder(names.size() * 120);
        for (ObjectName name : names) {
            MBeanAttributeInfo[] infos;
            try {
                infos = conn.mbsc.getMBeanInfo(name).getAttributes();
            } catch (javax.management.InstanceNotFoundException e) {
                continue;
            }
            String on = Codec.escape(name.toString());
            for (MBeanAttributeInfo a : infos) {
                if (!a.isReadable()) continue;
                out.append(on).append('\t').append(Codec.escape(a.getName())).append('\t')
                   .append(Codec.escape(a.getType())).append('\n');
            }
        }
        return out;
    }

    private static StringBuilder readBeans(Conn conn, List<ObjectName> names, Map<String, Integer> skipped)
            throws Exception {
        StringBuilder out = new StringBuilder(names.size() * 200);
        for (ObjectName name : names) {
            String[] attrs = conn.attributes.get(name);
            try {
                if (attrs == null) {
                    List<String> readable = new ArrayList<>();
                    for (MBeanAttributeInfo a : conn.mbsc.getMBeanInfo(name).getAttributes()) {
                        if (a.isReadable()) readable.add(a.getName());
                    }
                    attrs = readable.toArray(new String[0]);
                    conn.attributes.put(name, attrs);
                }
                AttributeList values = conn.mbsc.getAttributes(name, attrs);
                Set<String> got = new HashSet<>();
                String on = Codec.escape(name.toString());
                for (Attribute a : values.asList()) {
                    got.add(a.getName());
                    emit(out, on, Codec.escape(a.getName()), a.getValue(), skipped);
                }
                for (String a : attrs) {
                    if (!got.contains(a)) skipped.merge("unreadable attribute", 1, Integer::sum);
                }
            } catch (javax.management.InstanceNotFoundException e) {
                conn.attributes.remove(name);
                skipped.merge("MBean gone while reading", 1, Integer::sum);
            }
        }
        return out;
    }

    private static void emit(StringBuilder out, String on, String attr, Object value, Map<String, Integer> skipped) {
        if (value instanceof java.util.Optional) {
            java.util.Optional<?> optional = (java.util.Optional<?>) value;
            if (!optional.isPresent()) return;
            value = optional.get();
        }
        if (value instanceof java.util.Date) {
            // jmx_exporter exports a Date as epoch seconds
            value = ((java.util.Date) value).getTime() / 1000.0;
        }
        if (value instanceof CompositeData || value instanceof TabularData) {
            // open data goes to Python as JSON, which flattens it as jmx_exporter does (one walker for
            // every source); the dump format is the same
            StringBuilder json = new StringBuilder();
            Json.write(json, value);
            out.append("S\t").append(on).append('\t').append(attr).append("\tj").append(Codec.escape(json.toString()))
               .append('\n');
            return;
        }
        if (value != null && !(value instanceof Number || value instanceof Boolean || value instanceof String
                || value instanceof Enum)) {
            skipped.merge("unsupported type " + value.getClass().getSimpleName(), 1, Integer::sum);
            return;
        }
        out.append("S\t").append(on).append('\t').append(attr).append('\t').append(Codec.encode(value)).append('\n');
    }
}
