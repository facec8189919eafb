// Credentials from a Docker client config file (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`):
// `auths[host].auth` (base64 `user:password`) or `auths[host].username/password`. Credential helpers are
// not run; when one is configured for a host without inline credentials we say so instead of silently
// going anonymous.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CredentialProvider, Credentials } from './auth.ts';
import { RegistryError } from './errors.ts';

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(homedir(), '.docker', 'config.json');
}

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** The bare `host[:port]` of an auths key, which may be a URL such as `https://index.docker.io/v1/`. */
function keyHost(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? 'docker.io' : host;
}

function decodeAuth(registry: string, path: string, entry: NonNullable<DockerConfigFile['auths']>[string]): Credentials | undefined {
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new RegistryError('invalid-input', `registry ${registry}: auths entry in ${path} is not base64 "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (entry.identitytoken) {
    throw new RegistryError('unsupported', `registry ${registry}: ${path} holds an identity token for this host; identity tokens are not supported`);
  }
  return undefined;
}

/** Reads the config file on each lookup (it is small, and `docker login` may rewrite it meanwhile). */
export function dockerConfigCredentials(path: string = dockerConfigPath()): CredentialProvider {
  return async (registry) => {
    let config: DockerConfigFile;
    try {
      config = JSON.parse(await readFile(path, 'utf8')) as DockerConfigFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RegistryError('invalid-input', `docker config ${path} is unreadable: ${(err as Error).message.split('\n')[0]}`);
    }
    const host = keyHost(registry);
    const entry = Object.entries(config.auths ?? {}).find(([key]) => keyHost(key) === host)?.[1];
    const credentials = entry ? decodeAuth(registry, path, entry) : undefined;
    if (credentials) return credentials;
    const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => keyHost(key) === host)?.[1] ?? (entry ? config.credsStore : undefined);
    if (helper) {
      throw new RegistryError(
        'unsupported',
        `registry ${registry}: ${path} names credential helper "docker-credential-${helper}" for this host; credential helpers are not supported (put credentials under "auths" or pass them explicitly)`,
      );
    }
    return undefined;
  };
}
