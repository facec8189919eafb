// Credentials from a Docker client config file (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`):
// `auths[host].auth` (base64 `user:password`) or `auths[host].username/password`, else the credential
// helper the file names for the host (`credHelpers[host]`, else `credsStore`), run as Docker runs it:
// `docker-credential-<name> get` with the server on stdin and JSON on stdout. A helper that cannot be run
// or fails is a clear error, never a silent anonymous fallback; only its own "credentials not found"
// means anonymous.
import { type ExecFileException, execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LimitExceededError } from '../oci/errors.ts';
import type { Credentials } from './auth.ts';
import type { CredentialFunc, CredentialSource } from './credentials.ts';
import { RegistryError } from './errors.ts';

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(homedir(), '.docker', 'config.json');
}

/** The config file is small; anything larger is not one. */
const MAX_CONFIG_BYTES = 1 << 20;
/** A helper's answer is a short JSON object; its output is cut (and the helper killed) past this. */
export const MAX_HELPER_OUTPUT_BYTES = 1 << 20;
/** A helper that has not answered by then (waiting on a prompt, a hung keychain) is killed. */
export const HELPER_TIMEOUT_MS = 30_000;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** The bare `host[:port]` of an auths key, which may be a URL such as `https://index.docker.io/v1/`. */
function keyHost(key: string): string {
  const host = key
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
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
    throw new RegistryError(
      'unsupported',
      `registry ${registry}: ${path} holds an identity token for this host; identity tokens are not supported`,
    );
  }
  return undefined;
}

/** What Docker hands a helper for a host: Docker Hub under its historical URL, others as `host[:port]`. */
function helperServer(registry: string): string {
  return keyHost(registry) === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

/** Runs `docker-credential-<helper> get` for `registry`; undefined when the helper has no credentials for it. */
export async function runCredentialHelper(
  helper: string,
  registry: string,
  configPath: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  const what = `registry ${registry}: credential helper ${program} (named in ${configPath})`;
  if (!HELPER_NAME.test(helper))
    throw new RegistryError(
      'invalid-input',
      `registry ${registry}: ${configPath} names an invalid credential helper ${JSON.stringify(helper.slice(0, 64))}`,
    );
  const { stdout, stderr, error } = await new Promise<{ stdout: string; stderr: string; error: ExecFileException | null }>((resolve) => {
    const child = execFile(
      program,
      ['get'],
      { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: MAX_HELPER_OUTPUT_BYTES, killSignal: 'SIGKILL', encoding: 'utf8' },
      (err, out, errOut) => resolve({ stdout: out, stderr: errOut, error: err }),
    );
    child.stdin?.on('error', () => undefined); // a helper that exits without reading its input
    child.stdin?.end(helperServer(registry));
  });
  if (error) {
    if (error.code === 'ENOENT') throw new RegistryError('unsupported', `${what} is not installed (not found on PATH)`);
    if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
      throw new LimitExceededError('max-helper-output-bytes', `${what}: output exceeds the 1 MiB limit`);
    if (error.killed || error.signal) throw new RegistryError('failed', `${what} did not answer within ${HELPER_TIMEOUT_MS / 1000} s`);
    // docker-credential-helpers' own words for "nothing stored for this server" (on stdout).
    if (/credentials not found/i.test(stdout) || /credentials not found/i.test(stderr)) return undefined;
    const said = (stderr.trim() || stdout.trim()).split('\n')[0]?.slice(0, 200);
    throw new RegistryError('unauthorized', `${what} failed (exit ${error.code}${said ? `: ${said}` : ''})`);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(stdout) as typeof answer;
  } catch {
    throw new RegistryError('invalid-input', `${what} answered something other than JSON`);
  }
  if (typeof answer?.Username !== 'string' || typeof answer.Secret !== 'string')
    throw new RegistryError('invalid-input', `${what} answered without Username and Secret`);
  if (answer.Username === '<token>')
    throw new RegistryError('unsupported', `${what} returned an identity token; identity tokens are not supported`);
  return { username: answer.Username, password: answer.Secret };
}

async function readConfig(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_CONFIG_BYTES)
      throw new LimitExceededError('max-docker-config-bytes', `docker config ${path} is larger than 1 MiB`);
    text = bytes.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof LimitExceededError) throw err;
    throw new RegistryError('invalid-input', `docker config ${path} is unreadable: ${(err as Error).message.split('\n')[0]}`);
  }
  try {
    const config = JSON.parse(text) as unknown;
    if (typeof config === 'object' && config !== null && !Array.isArray(config)) return config as DockerConfigFile;
  } catch {
    // reported below
  }
  throw new RegistryError('invalid-input', `docker config ${path} is not a JSON object`);
}

/**
 * Reads the config file on each lookup (it is small, and `docker login` may rewrite it meanwhile); a
 * helper's answer is kept for the process's lifetime (helpers can be slow, or prompt).
 */
export function dockerConfigCredentials(configPath?: string): CredentialFunc {
  const fromHelpers = new Map<string, Promise<Credentials | undefined>>();
  return async (registry) => {
    // Without a path, $DOCKER_CONFIG is read at each lookup, as the docker CLI reads it at each run.
    const path = configPath ?? dockerConfigPath();
    const config = await readConfig(path);
    if (!config) return undefined;
    const host = keyHost(registry);
    const entry = Object.entries(config.auths ?? {}).find(([key]) => keyHost(key) === host)?.[1];
    const credentials = entry ? decodeAuth(registry, path, entry) : undefined;
    if (credentials) return credentials;
    const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => keyHost(key) === host)?.[1] ?? config.credsStore;
    if (!helper) return undefined;
    const key = `${helper}\n${registry}`;
    let answer = fromHelpers.get(key);
    if (!answer) {
      answer = runCredentialHelper(helper, registry, path);
      fromHelpers.set(key, answer);
      answer.catch(() => fromHelpers.delete(key));
    }
    return answer;
  };
}

/** The Docker config file (and the helpers it names) as a source of the credential chain. */
export function dockerConfigSource(configPath?: string): CredentialSource {
  return { name: 'docker-config', resolve: dockerConfigCredentials(configPath) };
}
