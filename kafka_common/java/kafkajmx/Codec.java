package kafkajmx;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The tab-separated line format Python and the JVM exchange: one py4j call carries a whole batch. */
final class Codec {
    private Codec() {}

    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\\': b.append("\\\\"); break;
                case '\t': b.append("\\t"); break;
                case '\n': b.append("\\n"); break;
                default: b.append(c);
            }
        }
        return b.toString();
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(n == 't' ? '\t' : n == 'n' ? '\n' : n);
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    static List<String> fields(String line) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= line.length(); i++) {
            if (i == line.length() || line.charAt(i) == '\t') {
                out.add(unescape(line.substring(start, i)));
                start = i + 1;
            }
        }
        return out;
    }

    /** A value tagged with its Java type: l=Long i=Integer y=Byte d=Double s=String t=TimeUnit b=Boolean n=null. */
    static Object decode(String v) {
        if (v.isEmpty()) throw new IllegalArgumentException("empty value");
        String rest = v.substring(1);
        switch (v.charAt(0)) {
            case 'l': return Long.valueOf(rest);
            case 'i': return Integer.valueOf(rest);
            case 'y': return Byte.valueOf(rest);
            case 'd': return Double.valueOf(rest);
            case 's': return rest;
            case 't': return TimeUnit.valueOf(rest);
            case 'b': return Boolean.valueOf(rest);
            case 'n': return null;
            default: throw new IllegalArgumentException("unknown value tag in " + v);
        }
    }

    static String encode(Object v) {
        if (v == null) return "n";
        if (v instanceof Long) return "l" + v;
        if (v instanceof Integer || v instanceof Short) return "i" + v;
        if (v instanceof Byte) return "y" + v;
        if (v instanceof Double || v instanceof Float) return "d" + v;
        if (v instanceof Boolean) return "b" + v;
        if (v instanceof Number) return "d" + ((Number) v).doubleValue();
        if (v instanceof Enum) return "t" + escape(((Enum<?>) v).name());
        return "s" + escape(String.valueOf(v));
    }
}
