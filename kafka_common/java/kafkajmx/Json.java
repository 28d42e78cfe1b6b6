package kafkajmx;

import java.util.Collection;
import javax.management.openmbean.CompositeData;
import javax.management.openmbean.TabularData;

/** Open data as the JSON of a `simulate --dump` file: CompositeData an object (keys in the
 *  CompositeType's order), TabularData {"@tabular": {"index": [...], "rows": [{...}]}}, arrays a list. */
final class Json {
    private Json() {}

    static void write(StringBuilder b, Object v) {
        if (v instanceof java.util.Optional) {
            v = ((java.util.Optional<?>) v).orElse(null);
        }
        if (v == null) {
            b.append("null");
        } else if (v instanceof Boolean) {
            b.append(v);
        } else if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            // Python's json reads these tokens back
            b.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : Double.toString(d));
        } else if (v instanceof Number) {
            b.append(v);
        } else if (v instanceof java.util.Date) {
            b.append(((java.util.Date) v).getTime() / 1000.0);
        } else if (v instanceof Enum) {
            string(b, ((Enum<?>) v).name());
        } else if (v instanceof CompositeData) {
            CompositeData cd = (CompositeData) v;
            b.append('{');
            boolean first = true;
            for (String key : cd.getCompositeType().keySet()) {
                if (!first) b.append(',');
                first = false;
                string(b, key);
                b.append(':');
                write(b, cd.get(key));
            }
            b.append('}');
        } else if (v instanceof TabularData) {
            TabularData td = (TabularData) v;
            b.append("{\"@tabular\":{\"index\":[");
            boolean first = true;
            for (String idx : td.getTabularType().getIndexNames()) {
                if (!first) b.append(',');
                first = false;
                string(b, idx);
            }
            b.append("],\"rows\":[");
            first = true;
            for (Object row : (Collection<?>) td.values()) {
                if (!first) b.append(',');
                first = false;
                write(b, row);
            }
            b.append("]}}");
        } else if (v.getClass().isArray()) {
            b.append('[');
            int n = java.lang.reflect.Array.getLength(v);
            for (int i = 0; i < n; i++) {
                if (i > 0) b.append(',');
                write(b, java.lang.reflect.Array.get(v, i));
            }
            b.append(']');
        } else {
            string(b, String.valueOf(v));
        }
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        b.append('"');
    }
}
