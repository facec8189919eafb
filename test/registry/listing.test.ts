// Listing a registry through the OCI API against docker-registry: the catalog and tags lists page by
// `n` and the Link header, and deletion by digest. The Link parser on its own, for the forms registries send.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { nextLink, OciRegistryListing } from '../../lambda/registry/listing.ts';
import { arrayOf } from '../support/bytes.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

let registry: RunningRegistry;
let proxy: FaultProxy;
let image: BuiltLayout;

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.host });
  image = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'a', size: 1000 }] }], tag: 'latest' });
  for (const ref of ['list/a:v1', 'list/a:v2', 'list/a:v3', 'list/b:v1', 'list/c:v1']) await pushLayout(image, `${registry.host}/${ref}`);
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
});

describe('OciRegistryListing', () => {
  test('pages through the catalog and a tags list with n and Link', async () => {
    const listing = new OciRegistryListing({ registry: proxy.host, pageSize: 2 });
    assert.deepEqual(await arrayOf(listing.repositories()), ['list/a', 'list/b', 'list/c']);
    assert.deepEqual((await arrayOf(listing.tags('list/a'))).map((t) => t.tag).sort(), ['v1', 'v2', 'v3']);
    const catalog = proxy.requests.filter((r) => r.path === '/v2/_catalog');
    assert.equal(catalog.length, 2, 'two pages of two');
    assert.deepEqual(
      catalog.map((r) => r.search),
      ['?n=2', '?last=list%2Fb&n=2'],
    );
    assert.equal(listing.calls.catalog, 2);
    // docker-registry 2.8 ignores n on tags lists (one page); paging of tags is the same code as the catalog's.
  });

  test('names outside the grammar (oci/reference.ts) in a catalog or tags list are dropped, not passed on', async () => {
    const lying = await startFaultProxy({
      upstream: registry.host,
      gate: (req, res) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const body =
          path === '/v2/_catalog'
            ? { repositories: ['list/a', 'List/Upper', 'bad//double', '../escape', `${'a'.repeat(256)}`, 'list/b'] }
            : path === '/v2/list/a/tags/list'
              ? { name: 'list/a', tags: ['v1', '-leading-dash', 't'.repeat(129), 'with space', 't'.repeat(128)] }
              : undefined;
        if (!body) return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
        return true;
      },
    });
    try {
      const listing = new OciRegistryListing({ registry: lying.host });
      assert.deepEqual(await arrayOf(listing.repositories()), ['list/a', 'list/b']);
      assert.deepEqual(
        (await arrayOf(listing.tags('list/a'))).map((t) => t.tag),
        ['v1', 't'.repeat(128)],
      );
    } finally {
      await lying.stop();
    }
  });

  test('deletes by digest', async () => {
    // An image of its own beside list/c:v1, so the repositories and tags the other tests list stay as they are.
    const doomed = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'doomed', size: 1000 }] }], tag: 'latest' });
    await pushLayout(doomed, `${registry.host}/list/c:doomed`);
    const listing = new OciRegistryListing({ registry: registry.host });
    assert.deepEqual((await arrayOf(listing.tags('list/c'))).map((t) => t.tag).sort(), ['doomed', 'v1']);
    await listing.deletion.deleteTag('list/c', 'doomed', doomed.root.digest);
    assert.deepEqual(
      (await arrayOf(listing.tags('list/c'))).map((t) => t.tag),
      ['v1'],
    );
  });

  test('Link headers: quoted or bare rel, relative or absolute, several links', () => {
    const base = new URL('http://r.example/v2/_catalog?n=2');
    assert.equal(nextLink('</v2/_catalog?last=b&n=2>; rel="next"', base)?.href, 'http://r.example/v2/_catalog?last=b&n=2');
    assert.equal(nextLink('<https://r.example/v2/x/tags/list?last=v2>;rel=next', base)?.href, 'https://r.example/v2/x/tags/list?last=v2');
    assert.equal(nextLink('</a>; rel="prev", </b>; rel="next"', base)?.pathname, '/b');
    assert.equal(nextLink('</a>; rel="prev"', base), undefined);
    assert.equal(nextLink(null, base), undefined);
  });
});
