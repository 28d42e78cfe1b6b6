package kafkajmx;

import javax.management.Attribute;
import javax.management.AttributeList;
import javax.management.DynamicMBean;
import javax.management.JMException;
import javax.management.MBeanException;
import javax.management.MBeanInfo;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.ReflectionException;

/** A platform MBean (java.lang:*) shown in a node's MBeanServer, as every Kafka JVM has them. */
final class ForwardingBean implements DynamicMBean {
    private final MBeanServer platform;
    private final ObjectName name;

    ForwardingBean(MBeanServer platform, ObjectName name) {
        this.platform = platform;
        this.name = name;
    }

    @Override
    public Object getAttribute(String attribute) throws MBeanException, ReflectionException {
        try {
            return platform.getAttribute(name, attribute);
        } catch (JMException e) {
            throw new MBeanException(e, e.getMessage());
        }
    }

    @Override
    public void setAttribute(Attribute attribute) throws MBeanException {
        throw new MBeanException(new UnsupportedOperationException("read-only"), "read-only");
    }

    @Override
    public AttributeList getAttributes(String[] attributes) {
        try {
            return platform.getAttributes(name, attributes);
        } catch (JMException e) {
            return new AttributeList();
        }
    }

    @Override
    public AttributeList setAttributes(AttributeList attributes) {
        return new AttributeList();
    }

    /** ThreadMXBean's reads (the JVM metrics' thread states and deadlocks); nothing that changes the JVM. */
    private static final java.util.Set<String> READS = java.util.Set.of(
            "getThreadInfo", "findDeadlockedThreads", "findMonitorDeadlockedThreads");

    @Override
    public Object invoke(String actionName, Object[] params, String[] signature) throws MBeanException {
        if (!READS.contains(actionName) || !"Threading".equals(name.getKeyProperty("type"))) {
            throw new MBeanException(new UnsupportedOperationException(actionName), "operations are not forwarded");
        }
        try {
            return platform.invoke(name, actionName, params, signature);
        } catch (JMException e) {
            throw new MBeanException(e, e.getMessage());
        }
    }

    @Override
    public MBeanInfo getMBeanInfo() {
        try {
            return platform.getMBeanInfo(name);
        } catch (JMException e) {
            throw new IllegalStateException(e);
        }
    }
}
