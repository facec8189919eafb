// Platforms as containerd handles them (github.com/containerd/platforms): `Normalize` for comparing and for
// the platform of a single-manifest image, `os/arch[/variant]` specifiers parsed with the same aliases
// (aarch64 = arm64, arm64/v8 = arm64, x86_64 = amd64, armhf = arm/v7 …), strict matching.
import type { Platform } from '../oci/target.ts';
import { SociError } from './types.ts';

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  // containerd substitutes the host OS for an empty one; soci runs on Linux.
  if (lower === '') return 'linux';
  return lower === 'macos' ? 'darwin' : lower;
}

function normalizeArch(architecture: string, variant: string): { architecture: string; variant: string } {
  const arch = architecture.toLowerCase();
  const v = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      return { architecture: '386', variant: '' };
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return { architecture: 'amd64', variant: v === 'v1' ? '' : v };
    case 'aarch64':
    case 'arm64':
      return { architecture: 'arm64', variant: v === '8' || v === 'v8' ? '' : v };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      if (v === '' || v === '7') return { architecture: 'arm', variant: 'v7' };
      return { architecture: 'arm', variant: v === '5' || v === '6' || v === '8' ? `v${v}` : v };
    default:
      return { architecture: arch, variant: v };
  }
}

/** containerd `platforms.Normalize`: the other fields (os.version, os.features) are kept. */
export function normalizePlatform(platform: Platform): Platform {
  const { architecture, variant } = normalizeArch(platform.architecture, platform.variant ?? '');
  const normalized: Platform = { ...platform, architecture, os: normalizeOs(platform.os) };
  if (variant === '') delete normalized.variant;
  else normalized.variant = variant;
  return normalized;
}

/** `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, ...(platform.variant ? [platform.variant] : [])].join('/');
}

/** Parses a `--platform` value; only the full `os/arch[/variant]` form is accepted (no host defaults). */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new SociError('permanent', `invalid platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/arm64/v8`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os, architecture, ...(variant !== undefined && { variant }) };
}

/**
 * A `--platform` value as containerd's `platforms.Parse` reads it, which is what upstream records as a
 * SOCI index's platform: normalized, except that `os/arm` drops the default `v7` and `os/arm64/<v8>`
 * keeps an explicit `v8`.
 */
export function parseSpecifier(text: string): Platform {
  const given = parsePlatform(text);
  const platform = normalizePlatform(given);
  if (given.variant === undefined && platform.architecture === 'arm' && platform.variant === 'v7') delete platform.variant;
  if (given.variant !== undefined && platform.architecture === 'arm64' && platform.variant === undefined) platform.variant = 'v8';
  return platform;
}

/** containerd `OnlyStrict(wanted).Match(candidate)`: equal once both are normalized. */
export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const a = normalizePlatform(wanted);
  const b = normalizePlatform(candidate);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}
