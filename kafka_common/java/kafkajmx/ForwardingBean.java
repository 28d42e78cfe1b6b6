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

    @Override
    public Object invoke(String actionName, Object[] params, String[] signature) throws MBeanException {
        throw new MBeanException(new UnsupportedOperationException(actionName), "operations are not forwarded");
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
