// Replica addresses as the cluster config writes them: "host:port", an IPv6 host in brackets
// ("[::1]:7000"). cluster-json.ts validates them when the config is read; this only splits them.

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Splits a "host:port" address; throws RangeError naming the address when it is not one. */
export function parseAddress(address: string): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !(port >= 1 && port <= 65_535)) throw new RangeError(`address "${address}" is not host:port with a port from 1 to 65535`);
  return { host: match[1] ?? match[2]!, port };
}
