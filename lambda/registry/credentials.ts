// Where registry credentials come from, as sources that chain (go-containerregistry's MultiKeychain,
// oras-go's CredentialFunc): each source answers for a host or says nothing, and the first answer wins.
// The standard chain is explicit credentials (when given, chained in front), the Docker config file (and its credential helpers), ECR
// (for ECR hosts), then anonymous. A source that fails (a broken helper, ECR refusing) stops the chain
// with its one-line error rather than falling through to a quieter source.
//
// A new source is a file that implements CredentialSource, plus its place in standardCredentialChain.
import type { Credentials } from './auth.ts';
import { dockerConfigSource } from './docker-config.ts';
import { ecrCredentialSource } from './ecr-credentials.ts';

export interface CredentialSource {
  /** For error messages and logs, e.g. `docker-config`, `ecr`. */
  readonly name: string;
  /** Credentials for a registry host (`host[:port]`), or undefined when this source has none. */
  resolve(registry: string): Promise<Credentials | undefined>;
}

/** A plain function in the place of a source (what RegistryTargetOptions.credentials accepted before). */
export type CredentialFunc = (registry: string) => Promise<Credentials | undefined>;

export function toCredentialSource(credentials: CredentialSource | CredentialFunc): CredentialSource {
  return typeof credentials === 'function' ? { name: 'function', resolve: credentials } : credentials;
}

/** Credentials given on the command line or in code: for `registry` only, or for every host when it is omitted. */
export function explicitCredentials(credentials: Credentials, registry?: string): CredentialSource {
  return { name: 'explicit', resolve: async (host) => (registry === undefined || host === registry ? credentials : undefined) };
}

/** The end of a chain: no credentials (the registry may still serve anonymous pulls). */
export const anonymous: CredentialSource = { name: 'anonymous', resolve: async () => undefined };

/** The first source that has credentials for the host answers; a source's failure is the chain's. */
export function chainCredentials(...sources: CredentialSource[]): CredentialSource {
  return {
    name: sources.map((s) => s.name).join(' > '),
    async resolve(registry) {
      for (const source of sources) {
        const credentials = await source.resolve(registry);
        if (credentials) return credentials;
      }
      return undefined;
    },
  };
}

/** The standard chain below explicit credentials: Docker config and its helpers > ECR > anonymous. */
export function standardCredentialChain(): CredentialSource {
  return chainCredentials(dockerConfigSource(), ecrCredentialSource(), anonymous);
}

/** One chain for the process, so that all targets share the helpers' answers and the ECR token. */
let processChain: CredentialSource | undefined;

export function defaultCredentialSource(): CredentialSource {
  processChain ??= standardCredentialChain();
  return processChain;
}
