// Image references: registry references in the Docker grammar (distribution/reference) and local OCI
// image layouts `oci:<dir>[:<ref-name>]`.
//
// Registry: `[docker://]host[:port]/repo[:tag][@sha256:<hex>]`. The first path component is the registry
// when it contains '.' or ':', is `localhost`, or has upper-case letters (Docker's rule); otherwise the
// registry is docker.io and a single-component repository gets `library/`, as `docker pull` does.
// Only sha256 digests are accepted. The repository must be lower case.
//
// Layout: as skopeo/containers-image, the directory ends at the first ':' after `oci:`; everything after
// it is the ref-name (which may itself contain ':' as the OCI ref-name grammar allows). So a directory
// path cannot contain ':'. Without a ref-name, the layout's only manifest is meant (see OciLayoutTarget).

import { InvalidReferenceError } from './errors.ts';

export interface RegistryReference {
  readonly kind: 'registry';
  /** `host[:port]`, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`, `localhost:5000`, `docker.io`. */
  readonly registry: string;
  /** e.g. `team/app`, `library/nginx`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export interface LayoutReference {
  readonly kind: 'layout';
  readonly dir: string;
  /** The `org.opencontainers.image.ref.name` to use; absent means the layout's only manifest. */
  readonly refName?: string;
}

export type ImageReference = RegistryReference | LayoutReference;

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';

// This file owns the name grammar: every other module checks names with the functions below.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
/** ECR's documented repositoryName pattern: one separator between alphanumerics (no `__`, no `--`). */
const ECR_REPOSITORY = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_GRAMMAR = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** The image-spec's registered algorithms in canonical form (what a registry event may carry). */
const REGISTERED_DIGEST = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
const SHA256 = /^sha256:[0-9a-f]{64}$/;
/** distribution/reference's bound on a whole name (`host/repository`); also applied to a repository alone. */
export const NAME_MAX = 255;
/** ECR's bound on a repository name. */
export const ECR_REPOSITORY_NAME_MAX = 256;

/** A repository name in the distribution grammar (`team/app`), at most `maxLength` characters. */
export function isRepositoryName(name: string, maxLength: number = NAME_MAX): boolean {
  return name.length <= maxLength && REPOSITORY.test(name);
}

/** A repository name as ECR itself allows them (a subset of the distribution grammar). */
export function isEcrRepositoryName(name: string): boolean {
  return name.length <= ECR_REPOSITORY_NAME_MAX && ECR_REPOSITORY.test(name);
}

/** A registry tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. */
export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A registry host `host[:port]`: DNS labels, or an IPv6 address in brackets. */
export function isRegistryHost(host: string): boolean {
  return DOMAIN.test(host);
}

/** A digest of a registered algorithm (sha256, sha512) in canonical lower-case hex. */
export function isRegisteredDigest(digest: string): boolean {
  return REGISTERED_DIGEST.test(digest);
}
/** image-layout `org.opencontainers.image.ref.name` grammar. */
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Parses `oci:<dir>[:<ref-name>]` or a registry reference. */
export function parseReference(text: string): ImageReference {
  return text.startsWith('oci:') ? parseLayoutReference(text) : parseRegistryReference(text);
}

export function parseLayoutReference(text: string): LayoutReference {
  if (!text.startsWith('oci:')) throw invalid(text, 'a layout reference starts with "oci:"');
  const rest = text.slice('oci:'.length);
  const colon = rest.indexOf(':');
  const dir = colon < 0 ? rest : rest.slice(0, colon);
  const refName = colon < 0 ? '' : rest.slice(colon + 1);
  if (dir === '') throw invalid(text, 'the layout directory is empty');
  if (refName === '') return { kind: 'layout', dir };
  if (!isRefName(refName)) throw invalid(text, `${JSON.stringify(refName)} is not a valid OCI ref name`);
  return { kind: 'layout', dir, refName };
}

/** True for a valid image-layout ref name (tag), e.g. `latest`, `v1.0`, `stable/amd64`. */
export function isRefName(name: string): boolean {
  return REF_NAME.test(name);
}

export function parseRegistryReference(text: string): RegistryReference {
  let rest = text.startsWith('docker://') ? text.slice('docker://'.length) : text;
  if (rest === '') throw invalid(text, 'it is empty');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) throw invalid(text, 'only docker:// and oci: prefixes are understood');
  if (/^[a-f0-9]{64}$/.test(rest)) throw invalid(text, 'a 64-hex string is an image ID, not a repository name');

  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_GRAMMAR.test(digest)) throw invalid(text, `${JSON.stringify(digest)} is not a digest`);
    if (!SHA256.test(digest)) throw invalid(text, 'only sha256 digests (64 lower-case hex digits) are supported');
  }

  // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw invalid(text, `${JSON.stringify(tag)} is not a valid tag`);
  }

  const { registry, repository } = splitName(text, rest);
  return { kind: 'registry', registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

function splitName(text: string, name: string): { registry: string; repository: string } {
  if (name === '') throw invalid(text, 'the repository name is empty');
  if (name.length > NAME_MAX) throw invalid(text, `the name is longer than ${NAME_MAX} characters`);
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  const isDomain = slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase());
  let registry = isDomain ? first : DEFAULT_REGISTRY;
  let repository = isDomain ? name.slice(slash + 1) : name;
  if (repository === '') throw invalid(text, 'the repository name is empty');
  if (isDomain && !isRegistryHost(registry)) throw invalid(text, `${JSON.stringify(registry)} is not a valid registry host`);
  if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      const reason =
        component !== component.toLowerCase()
          ? 'the repository name must be lower case'
          : `${JSON.stringify(component)} is not a valid repository path component`;
      throw invalid(text, reason);
    }
  }
  return { registry, repository };
}

/**
 * The core's reference: `tag@digest` when both are given (the build is pinned to the digest and the
 * output tag derives from the tag), else the digest, else the tag, else `latest`.
 */
export function registryReferenceTarget(ref: RegistryReference): string {
  if (ref.digest !== undefined) return ref.tag !== undefined ? `${ref.tag}@${ref.digest}` : ref.digest;
  return ref.tag ?? DEFAULT_TAG;
}

/** The canonical text form, e.g. `localhost:5000/app:v1@sha256:…` or `oci:/tmp/layout:latest`. */
export function formatReference(ref: ImageReference): string {
  if (ref.kind === 'layout') return `oci:${ref.dir}${ref.refName !== undefined ? `:${ref.refName}` : ''}`;
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

function invalid(text: string, reason: string): InvalidReferenceError {
  return new InvalidReferenceError(`invalid image reference ${JSON.stringify(text)}: ${reason}`);
}
