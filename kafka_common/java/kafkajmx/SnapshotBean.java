package kafkajmx;

import java.util.HashMap;
import java.util.Map;
import javax.management.Attribute;
import javax.management.AttributeList;
import javax.management.AttributeNotFoundException;
import javax.management.DynamicMBean;
import javax.management.MBeanAttributeInfo;
import javax.management.MBeanInfo;
import javax.management.MBeanOperationInfo;

/**
 * An MBean whose attribute values Python publishes in bulk. The MBeanInfo declares Kafka's types
 * (a kafka-metrics MBean declares every attribute double, even when a value is a String, as Kafka's
 * KafkaMbean does); getAttribute returns the published object as it is.
 */
public final class SnapshotBean implements DynamicMBean {
    private final MBeanInfo info;
    private final Map<String, Integer> index = new HashMap<>();
    private volatile Object[] values;

    SnapshotBean(String className, String[] names, String[] types, String description) {
        MBeanAttributeInfo[] attrs = new MBeanAttributeInfo[names.length];
        for (int i = 0; i < names.length; i++) {
            attrs[i] = new MBeanAttributeInfo(names[i], types[i], names[i], true, false, false);
            index.put(names[i], i);
        }
        info = new MBeanInfo(className, description, attrs, null, new MBeanOperationInfo[0], null);
        values = new Object[names.length];
    }

    int size() {
        return index.size();
    }

    void set(Object[] newValues) {
        values = newValues;
    }

    @Override
    public Object getAttribute(String attribute) throws AttributeNotFoundException {
        Integer i = index.get(attribute);
        if (i == null) throw new AttributeNotFoundException("No such attribute: " + attribute);
        return values[i];
    }

    @Override
    public void setAttribute(Attribute attribute) throws AttributeNotFoundException {
        throw new AttributeNotFoundException("Attribute " + attribute.getName() + " is read-only");
    }

    @Override
    public AttributeList getAttributes(String[] attributes) {
        AttributeList list = new AttributeList();
        Object[] snapshot = values;
        for (String name : attributes) {
            Integer i = index.get(name);
            if (i != null) list.add(new Attribute(name, snapshot[i]));
        }
        return list;
    }

    @Override
    public AttributeList setAttributes(AttributeList attributes) {
        return new AttributeList();
    }

    @Override
    public Object invoke(String actionName, Object[] params, String[] signature) {
        return null;
    }

    @Override
    public MBeanInfo getMBeanInfo() {
        return info;
    }
}
