// Registry writes seen by a recording front (the fault proxy, the ECR front): every request but GET and
// HEAD (PUT, PATCH, POST, DELETE), as `METHOD /path`, so "writes nothing" is asserted as an empty list and a
// failure names what was written.

/** What a recording front keeps of a request (FaultProxy's and EcrFront's records both fit). */
export interface RecordedRequest {
  method: string;
  path: string;
  status?: number;
}

/** The writes in `requests` from index `from` on, as `METHOD /path`; `keep` drops the others too. */
export function writesSince(
  requests: readonly RecordedRequest[],
  from: number,
  keep: (r: RecordedRequest) => boolean = () => true,
): string[] {
  return requests
    .slice(from)
    .filter((r) => r.method !== 'GET' && r.method !== 'HEAD' && keep(r))
    .map((r) => `${r.method} ${r.path}`);
}

/** Starts watching now; the returned function gives the writes recorded since. */
export function watchWrites(requests: readonly RecordedRequest[]): () => string[] {
  const from = requests.length;
  return () => writesSince(requests, from);
}

/** Runs `action` and returns its value with the writes recorded while it ran. */
export async function writesDuring<T>(
  requests: readonly RecordedRequest[],
  action: () => Promise<T>,
): Promise<{ value: T; writes: string[] }> {
  const written = watchWrites(requests);
  const value = await action();
  return { value, writes: written() };
}
