import fs from "node:fs";
import net from "node:net";

/**
 * The kernel's range for the local ports of outgoing connections. A port the OS hands out for `listen(0)` comes
 * from this range too, so between that pick and the server's own bind any outgoing connection on the machine
 * can take it (seen: HAProxy's bind failing with "Address already in use" among a busy e2e run's connections).
 */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return lo && hi ? [lo, hi] : undefined;
  } catch {
    return undefined;
  }
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, for servers a test starts itself: a random one below the
 * ephemeral range (no outgoing connection takes it meanwhile), or one the OS picks where that range is unknown.
 */
export async function freePort(): Promise<number> {
  const range = ephemeralRange();
  if (range && range[0] > 11_024) {
    const [low, high] = [range[0] - 10_000, range[0] - 1];
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await tryListen(low + Math.floor(Math.random() * (high - low + 1)));
      if (port !== undefined) return port;
    }
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error("no free TCP port on 127.0.0.1");
  return port;
}
