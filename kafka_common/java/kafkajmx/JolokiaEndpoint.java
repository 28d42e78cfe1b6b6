package kafkajmx;

import com.sun.net.httpserver.BasicAuthenticator;
import com.sun.net.httpserver.HttpContext;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import javax.management.MBeanServer;
import org.jolokia.backend.BackendManager;
import org.jolokia.config.ConfigKey;
import org.jolokia.config.Configuration;
import org.jolokia.http.HttpRequestHandler;
import org.jolokia.util.LogHandler;
import org.json.simple.JSONAware;

/** Jolokia's own request handling (Debian's jolokia-core) served over HTTP for one node. */
public final class JolokiaEndpoint implements AutoCloseable {
    private static final LogHandler QUIET = new LogHandler() {
        public void debug(String message) { }
        public void info(String message) { }
        public void error(String message, Throwable t) { }
    };
    private final HttpServer server;
    private final BackendManager backend;
    private final String url;

    public JolokiaEndpoint(MBeanServer mbs, String host, int port) throws IOException {
        this(mbs, host, port, null, null);
    }

    /** With user non-null, requests need HTTP basic authentication with user and password. */
    public JolokiaEndpoint(MBeanServer mbs, String host, int port, String user, String password) throws IOException {
        Configuration config = new Configuration(ConfigKey.AGENT_ID, "kafka-jmx-" + host + "-" + port);
        NodeDetector.PENDING.set(mbs);
        try {
            backend = new BackendManager(config, QUIET, null, false);
        } finally {
            NodeDetector.PENDING.remove();
        }
        HttpRequestHandler handler = new HttpRequestHandler(config, backend, QUIET);
        server = HttpServer.create(new InetSocketAddress(host, port), 16);
        HttpContext context = server.createContext("/jolokia", exchange -> handle(handler, exchange));
        if (user != null) {
            context.setAuthenticator(new BasicAuthenticator("jolokia") {
                @Override
                public boolean checkCredentials(String u, String p) {
                    return user.equals(u) && password.equals(p);
                }
            });
        }
        server.start();
        url = "http://" + host + ":" + server.getAddress().getPort() + "/jolokia/";
    }

    @Override
    public String toString() {
        return url;
    }

    private static Map<String, String[]> params(URI uri) {
        Map<String, String[]> out = new HashMap<>();
        String query = uri.getRawQuery();
        if (query == null) return out;
        for (String pair : query.split("&")) {
            int eq = pair.indexOf('=');
            String k = java.net.URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
            String v = eq < 0 ? "" : java.net.URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
            out.put(k, new String[]{v});
        }
        return out;
    }

    private static void handle(HttpRequestHandler handler, HttpExchange exchange) throws IOException {
        JSONAware json;
        try {
            URI uri = exchange.getRequestURI();
            String path = uri.getPath().substring("/jolokia".length());
            if ("POST".equals(exchange.getRequestMethod())) {
                json = handler.handlePostRequest(uri.toString(), exchange.getRequestBody(), "UTF-8", params(uri));
            } else {
                json = handler.handleGetRequest(uri.toString(), path, params(uri));
            }
        } catch (Throwable t) {
            json = handler.handleThrowable(t);
        }
        byte[] body = json.toJSONString().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        backend.destroy();
    }
}
