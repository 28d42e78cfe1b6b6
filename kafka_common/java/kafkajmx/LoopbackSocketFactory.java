package kafkajmx;

import java.io.IOException;
import java.io.Serializable;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.rmi.server.RMIServerSocketFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;

/**
 * Server sockets bound to one address (127.0.0.1 by default), optionally TLS: the RMI registry and
 * the JMX connector share one port, as -Dcom.sun.management.jmxremote.port/rmi.port do for Kafka.
 */
final class LoopbackSocketFactory implements RMIServerSocketFactory, Serializable {
    private static final long serialVersionUID = 1L;
    private final String host;
    private final transient SSLContext ssl;

    LoopbackSocketFactory(String host, SSLContext ssl) {
        this.host = host;
        this.ssl = ssl;
    }

    @Override
    public ServerSocket createServerSocket(int port) throws IOException {
        InetAddress address = InetAddress.getByName(host);
        ServerSocket socket;
        if (ssl != null) {
            SSLServerSocket s = (SSLServerSocket) ssl.getServerSocketFactory().createServerSocket();
            socket = s;
        } else {
            socket = new ServerSocket();
        }
        socket.setReuseAddress(true);
        socket.bind(new java.net.InetSocketAddress(address, port), 50);
        return socket;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoopbackSocketFactory && ((LoopbackSocketFactory) o).host.equals(host)
                && ((LoopbackSocketFactory) o).ssl == ssl;
    }

    @Override
    public int hashCode() {
        return host.hashCode();
    }
}
