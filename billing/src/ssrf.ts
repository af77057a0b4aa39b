import dns from "node:dns";
import net from "node:net";

/**
 * Outgoing webhooks go only to public HTTPS endpoints. Every address a host name resolves to is
 * checked, and the connection is made to the checked address (the same lookup), so a DNS answer
 * that changes between check and connect (rebinding) cannot reach an internal address.
 */
const blocked = new net.BlockList();
for (const [net4, prefix] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24],
  ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) blocked.addSubnet(net4, prefix, "ipv4");
for (const [net6, prefix] of [
  ["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["2001:db8::", 32], ["100::", 64],
] as const) blocked.addSubnet(net6, prefix, "ipv6");

const loopback = new net.BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

/** The IPv4 address embedded in an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedV4(address: string): string | null {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return null;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16), lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export interface TargetPolicy {
  /** Tests only: allow 127.0.0.0/8 and ::1 (still HTTPS). */
  allowLoopback?: boolean;
}

/** Why an address may not be a webhook target, or null when it may. */
export function refusedAddress(address: string, policy: TargetPolicy = {}): string | null {
  const family = net.isIP(address);
  if (!family) return `not an IP address: ${address}`;
  const v4 = family === 6 ? embeddedV4(address) : address;
  const [addr, type] = v4 ? [v4, "ipv4" as const] : [address, "ipv6" as const];
  if (policy.allowLoopback && loopback.check(addr, type)) return null;
  return blocked.check(addr, type) ? `address ${address} is private, loopback, link-local or otherwise internal` : null;
}

/**
 * Why a URL may not be a webhook target (before DNS), or null. An IP-literal host is checked here:
 * Node connects to IP literals without calling `lookup`, so the guarded lookup never sees them.
 */
export function refusedUrl(raw: string, policy: TargetPolicy = {}): string | null {
  let url: URL;
  try { url = new URL(raw); } catch { return "not a valid URL"; }
  if (url.protocol !== "https:") return "only https:// webhook URLs are allowed";
  if (url.username || url.password) return "credentials in webhook URLs are not allowed";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (net.isIP(host)) {
    const refused = refusedAddress(host, policy);
    if (refused) return `refused webhook target ${host}: ${refused}`;
  }
  return null;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A `lookup` for http(s).request that fails unless every resolved address is allowed. */
export function guardedLookup(policy: TargetPolicy = {}) {
  return (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) return callback(err, "");
      const refused = addresses.map((a) => refusedAddress(a.address, policy)).find((r) => r !== null);
      if (refused || addresses.length === 0) {
        const e: NodeJS.ErrnoException = new Error(`refused webhook target ${hostname}: ${refused ?? "no addresses"}`);
        e.code = "EREFUSEDTARGET";
        return callback(e, "");
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
