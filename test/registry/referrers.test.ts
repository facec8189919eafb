// Referrers on docker-registry 2.8: natively through a proxy that adds the OCI 1.1 API, and through the
// tag-schema fallback (`sha256-<hex>` index) that the client maintains when the registry lacks the API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import {
  EMPTY_JSON_CONFIG,
  MEDIA_TYPE_OCI_EMPTY,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
} from '../../lambda/oci/media-types.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { referrersTag } from '../../lambda/registry/referrers.ts';
import { descriptorOf } from '../support/bytes.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { deterministicBytes } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const SBOM_TYPE = 'application/vnd.example.sbom.v1+json';
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** Pushes a one-layer image and two referrers of it: a SOCI-like artifact (artifactType) and an "SBOM" (config type). */
async function pushSubjectAndReferrers(target: RegistryTarget) {
  const layer = deterministicBytes(`layer-${target.description}`, 2000);
  const layerDesc = descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar');
  const empty = new TextEncoder().encode(EMPTY_JSON_CONFIG.content);
  const emptyDesc = { mediaType: MEDIA_TYPE_OCI_EMPTY, digest: EMPTY_JSON_CONFIG.digest, size: EMPTY_JSON_CONFIG.size };
  await target.push(layerDesc, layer);
  await target.push(emptyDesc, empty);
  const subjectBytes = encode({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: emptyDesc, layers: [layerDesc] });
  const subject = descriptorOf(subjectBytes, MEDIA_TYPE_OCI_MANIFEST);
  await target.push(subject, subjectBytes);

  const sociBytes = encode({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    artifactType: SOCI_INDEX_ARTIFACT_TYPE_V1,
    config: emptyDesc,
    layers: [layerDesc],
    subject,
    annotations: { 'com.amazon.soci.build-tool-identifier': 'test' },
  });
  const sbomConfig = encode({ sbom: true });
  const sbomConfigDesc = descriptorOf(sbomConfig, SBOM_TYPE);
  await target.push(sbomConfigDesc, sbomConfig);
  const sbomBytes = encode({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: sbomConfigDesc, layers: [layerDesc], subject });
  const soci = descriptorOf(sociBytes, MEDIA_TYPE_OCI_MANIFEST);
  const sbom = descriptorOf(sbomBytes, MEDIA_TYPE_OCI_MANIFEST);
  await target.push(soci, sociBytes);
  await target.push(sbom, sbomBytes);
  return {
    subject,
    soci: { ...soci, artifactType: SOCI_INDEX_ARTIFACT_TYPE_V1, annotations: { 'com.amazon.soci.build-tool-identifier': 'test' } },
    sbom: { ...sbom, artifactType: SBOM_TYPE },
    pushAgain: () => target.push(soci, sociBytes),
  };
}

describe('referrers', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.host, referrers: true });
  });
  after(async () => {
    await proxy.stop();
    await registry.stop();
  });

  test('with the referrers API: lists and filters by artifactType, and leaves no fallback tag', async () => {
    const target = new RegistryTarget({ registry: proxy.host, repository: 'test/native' });
    const { subject, soci, sbom } = await pushSubjectAndReferrers(target);
    assert.deepEqual(await target.referrers(subject), [soci, sbom]);
    assert.deepEqual(await target.referrers(subject, SOCI_INDEX_ARTIFACT_TYPE_V1), [soci]);
    assert.deepEqual(await target.referrers(subject, 'application/vnd.other+json'), []);
    // `+` travels as %2B, so the server's query parser does not turn it into a space.
    const filtered = proxy.requests.filter((r) => r.path.includes('/referrers/') && r.search.includes('artifactType'));
    assert.deepEqual(
      filtered.map((r) => r.search),
      [
        `?artifactType=${SOCI_INDEX_ARTIFACT_TYPE_V1.replace('/', '%2F').replace('+', '%2B')}`,
        '?artifactType=application%2Fvnd.other%2Bjson',
      ],
    );
    const direct = new RegistryTarget({ registry: registry.host, repository: 'test/native' });
    await assert.rejects(direct.resolve(referrersTag(subject.digest)), { kind: 'not-found' });
  });

  test('without the API: maintains the sha256-<hex> tag index and reads it back', async () => {
    const target = new RegistryTarget({ registry: registry.host, repository: 'test/fallback' });
    const { subject, soci, sbom, pushAgain } = await pushSubjectAndReferrers(target);
    await pushAgain();
    const indexDesc = await target.resolve(referrersTag(subject.digest));
    assert.equal(indexDesc.mediaType, MEDIA_TYPE_OCI_INDEX);
    const index = JSON.parse(new TextDecoder().decode(await target.fetchBytes(indexDesc)));
    assert.deepEqual(index, { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [soci, sbom] });
    assert.deepEqual(await target.referrers(subject), [soci, sbom]);
    assert.deepEqual(await target.referrers(subject, SBOM_TYPE), [sbom]);
    // A fresh client (which has not learned the registry lacks the API) finds them the same way.
    assert.deepEqual(
      await new RegistryTarget({ registry: registry.host, repository: 'test/fallback' }).referrers(subject, SOCI_INDEX_ARTIFACT_TYPE_V1),
      [soci],
    );
  });

  test('a subject without referrers has none, with or without the API', async () => {
    const lonely = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256Digest(deterministicBytes('lonely', 10)), size: 10 };
    assert.deepEqual(await new RegistryTarget({ registry: registry.host, repository: 'test/fallback' }).referrers(lonely), []);
    assert.deepEqual(await new RegistryTarget({ registry: proxy.host, repository: 'test/native' }).referrers(lonely), []);
  });
});
