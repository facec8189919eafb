import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { GoJsonError } from '../../lambda/oci/errors.ts';
import {
  goInt,
  goMarshal,
  goQuote,
  goSlice,
  goString,
  goStruct,
  goUnmarshal,
  type Manifest,
  marshalDescriptor,
  marshalIndex,
  marshalManifest,
  parseDescriptor,
  parseIndex,
  parseManifest,
} from '../../lambda/oci/go-json.ts';
import { ANNOTATION_SOCI_INDEX_DIGEST, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_MANIFEST } from '../../lambda/oci/media-types.ts';
import { goldenFiles, goldenPath } from '../support/golden.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

describe('golden index JSON round trip', () => {
  for (const dir of goldenFiles('index')) {
    for (const name of goldenFiles(`index/${dir}`, '.json').filter((n) => !n.startsWith('prefetch-'))) {
      test(`${dir}/${name} re-serializes byte-identically`, () => {
        const bytes = readFileSync(goldenPath('index', dir, name));
        const isIndex = name === 'converted-oci-index.json' || name === 'converted-layout-index.json';
        const out = isIndex ? marshalIndex(parseIndex(bytes)) : marshalManifest(parseManifest(bytes));
        assert.equal(text(out), bytes.toString('utf8'));
      });
    }
  }

  // The prefetch artifact is soci's own struct; the generic codec serves it through a schema.
  const prefetchSchema = goStruct([
    { json: 'version', type: goString },
    {
      json: 'prefetch_spans',
      prop: 'spans',
      type: goSlice(
        goStruct([
          { json: 'start_span', prop: 'start', type: goInt },
          { json: 'end_span', prop: 'end', type: goInt },
          { json: 'priority', type: goInt, omitempty: true },
        ]),
      ),
    },
  ]);
  for (const name of goldenFiles('index/b-span64k-min0-xattr-prefetch', '.json').filter((n) => n.startsWith('prefetch-'))) {
    test(`${name} round-trips through a custom schema with renamed properties`, () => {
      const bytes = readFileSync(goldenPath('index', 'b-span64k-min0-xattr-prefetch', name));
      const value = goUnmarshal(prefetchSchema, bytes) as { spans: { start: number; end: number }[] };
      assert.ok(value.spans.length > 0);
      assert.equal(typeof value.spans[0]!.start, 'number');
      assert.equal(text(goMarshal(prefetchSchema, value)), bytes.toString('utf8'));
    });
  }

  test('the pretty-printed golden image manifest, rewritten as convert does, gives the golden converted manifest', () => {
    const manifest = parseManifest(
      readFileSync(goldenPath('image-layout', 'blobs', 'sha256', 'fbf36bc11809c654edf97c6f26cf31969fa65c8dc0402f4f4bb7bdf1a7249964')),
    );
    const expected = readFileSync(goldenPath('index', 'a-span4m-min1MiB', 'converted-image-manifest.json'));
    const rewritten: Manifest = {
      ...manifest,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { ...manifest.config, mediaType: MEDIA_TYPE_OCI_CONFIG },
      annotations: {
        ...manifest.annotations,
        [ANNOTATION_SOCI_INDEX_DIGEST]: 'sha256:fc62f8fca2e6fd9c5c7d92b5fe87ac699d27575d1a5ba7e1c3f12ba32b3967d2',
      },
    };
    assert.equal(text(marshalManifest(rewritten)), expected.toString('utf8'));
  });
});

describe('Go string escaping', () => {
  const cases: [string, string, string][] = [
    ['HTML characters', '<a href="x">&</a>', '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"'],
    ['line and paragraph separators', 'a\u2028b\u2029c', '"a\\u2028b\\u2029c"'],
    ['short control escapes (Go >= 1.22)', '\b\f\n\r\t', '"\\b\\f\\n\\r\\t"'],
    ['other control characters as \\u00XX, lower-case hex', '\u0000\u0001\u001f\u000b', '"\\u0000\\u0001\\u001f\\u000b"'],
    ['backslash and quote', '\\"', '"\\\\\\""'],
    ['slash, DEL and non-ASCII stay raw', '/\u007fé€😀\uFFFD', '"/\u007fé€😀\uFFFD"'],
    ['a lone surrogate becomes a raw U+FFFD', 'a\uD800b\uDC00', '"a\uFFFDb\uFFFD"'],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => assert.equal(goQuote(input), expected));
  }

  test('marshalled bytes are UTF-8 of the escaped text', () => {
    const out = marshalDescriptor({ mediaType: 'é', digest: '\uD800', size: 1 });
    assert.deepEqual([...out.subarray(0, 17)], [...enc('{"mediaType":"é"')]);
    assert.ok(Buffer.from(out).includes(Buffer.from([0xef, 0xbf, 0xbd])));
  });

  test('map keys sort by UTF-8 bytes, not UTF-16 code units', () => {
    const desc = { mediaType: 'm', digest: 'd', size: 0, annotations: { b: '1', '😀': '2', '\uFFFF': '3', a: '4', é: '5', B: '6' } };
    assert.equal(
      text(marshalDescriptor(desc)),
      '{"mediaType":"m","digest":"d","size":0,"annotations":{"B":"6","a":"4","b":"1","é":"5","\uFFFF":"3","😀":"2"}}',
    );
  });
});

describe('omitempty and Go zero values', () => {
  test('descriptor: size always printed, empty optional fields omitted, field order fixed', () => {
    const out = marshalDescriptor({
      artifactType: 'at',
      platform: { variant: 'v8', os: 'linux', architecture: 'arm64', 'os.features': [], 'os.version': '' },
      data: '',
      annotations: {},
      urls: [],
      size: 0,
      digest: 'sha256:x',
      mediaType: 'mt',
    });
    assert.equal(
      text(out),
      '{"mediaType":"mt","digest":"sha256:x","size":0,"platform":{"architecture":"arm64","os":"linux","variant":"v8"},"artifactType":"at"}',
    );
  });

  test('descriptor with every field', () => {
    const desc = {
      mediaType: 'mt',
      digest: 'sha256:x',
      size: 5,
      urls: ['https://a/b'],
      annotations: { k: 'v' },
      data: 'aGVsbG8=',
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0', 'os.features': ['win32k'] },
      artifactType: 'at',
    };
    const out = text(marshalDescriptor(desc));
    assert.equal(
      out,
      '{"mediaType":"mt","digest":"sha256:x","size":5,"urls":["https://a/b"],"annotations":{"k":"v"},"data":"aGVsbG8=","platform":{"architecture":"amd64","os":"windows","os.version":"10.0","os.features":["win32k"]},"artifactType":"at"}',
    );
    assert.deepEqual(parseDescriptor(enc(out)), desc);
  });

  test('nil layers print null, empty layers print []', () => {
    const base = { schemaVersion: 2, config: { mediaType: 'c', digest: 'd', size: 2 } };
    assert.equal(
      text(marshalManifest({ ...base, layers: null })),
      '{"schemaVersion":2,"config":{"mediaType":"c","digest":"d","size":2},"layers":null}',
    );
    assert.equal(
      text(marshalManifest({ ...base, layers: [] })),
      '{"schemaVersion":2,"config":{"mediaType":"c","digest":"d","size":2},"layers":[]}',
    );
  });

  test('an absent or null layers field decodes to nil and re-encodes as null; [] stays []', () => {
    assert.equal(parseManifest(enc('{"schemaVersion":2}')).layers, null);
    assert.equal(parseManifest(enc('{"layers":null}')).layers, null);
    assert.deepEqual(parseManifest(enc('{"layers":[]}')).layers, []);
    assert.equal(parseIndex(enc('{}')).manifests, null);
  });

  test('a top-level null decodes to the zero manifest', () => {
    assert.equal(
      text(marshalManifest(parseManifest(enc(' null ')))),
      '{"schemaVersion":0,"config":{"mediaType":"","digest":"","size":0},"layers":null}',
    );
  });

  test('an empty platform object is kept (non-nil pointer) with its zero strings printed', () => {
    const desc = parseDescriptor(enc('{"mediaType":"m","digest":"d","size":1,"platform":{}}'));
    assert.equal(text(marshalDescriptor(desc)), '{"mediaType":"m","digest":"d","size":1,"platform":{"architecture":"","os":""}}');
  });

  test('refuses non-integer sizes when encoding', () => {
    assert.throws(() => marshalDescriptor({ mediaType: 'm', digest: 'd', size: 1.5 }), GoJsonError);
    assert.throws(() => marshalDescriptor({ mediaType: 'm', digest: 'd', size: 2 ** 53 }), GoJsonError);
  });
});

describe('decoding like json.Unmarshal into image-spec structs', () => {
  test('unknown fields are dropped and output is compact', () => {
    const m = parseManifest(
      enc(
        '{ "schemaVersion" : 2, "foo": {"bar": [1, 2.5e3, true]}, "config": {"mediaType":"c","digest":"d","size":2,"extra":null}, "layers": [] }',
      ),
    );
    assert.equal(text(marshalManifest(m)), '{"schemaVersion":2,"config":{"mediaType":"c","digest":"d","size":2},"layers":[]}');
  });

  test('keys match case-insensitively (with Go folding of ſ and K), exact or not, last one wins', () => {
    const m = parseManifest(enc('{"SCHEMAVERSION":2,"\u017fchemaVersion":3,"mediaType":"a","MediaType":"b","Annotations":{"k":"v"}}'));
    assert.equal(m.schemaVersion, 3);
    assert.equal(m.mediaType, 'b');
    assert.deepEqual(m.annotations, { k: 'v' });
  });

  test('a repeated struct key merges into the same struct, a repeated map key merges maps', () => {
    const m = parseManifest(
      enc('{"config":{"mediaType":"a","size":1},"config":{"digest":"d"},"annotations":{"x":"1"},"annotations":{"y":"2","x":"3"}}'),
    );
    assert.deepEqual(m.config, { mediaType: 'a', digest: 'd', size: 1 });
    assert.deepEqual(m.annotations, { x: '3', y: '2' });
  });

  test('null leaves scalars at their zero value, a null map value is stored as ""', () => {
    const d = parseDescriptor(enc('{"mediaType":null,"digest":"d","size":null,"annotations":{"k":null}}'));
    assert.deepEqual(d, { mediaType: '', digest: 'd', size: 0, annotations: { k: '' } });
  });

  test('empty maps and slices in omitempty fields are left out of the parsed object', () => {
    const d = parseDescriptor(enc('{"mediaType":"m","digest":"d","size":1,"annotations":{},"urls":[],"artifactType":""}'));
    assert.deepEqual(d, { mediaType: 'm', digest: 'd', size: 1 });
  });

  test('a "__proto__" annotation is an ordinary key', () => {
    const d = parseDescriptor(enc('{"mediaType":"m","digest":"d","size":1,"annotations":{"__proto__":"x"}}'));
    assert.deepEqual(Object.keys(d.annotations!), ['__proto__']);
    assert.equal(Object.getPrototypeOf(d.annotations), Object.prototype);
    assert.match(text(marshalDescriptor(d)), /"annotations":\{"__proto__":"x"\}/);
  });

  test('data is base64 as Go StdEncoding accepts it, re-encoded canonically', () => {
    assert.equal(parseDescriptor(enc('{"data":"aGVs\\nbG8="}')).data, 'aGVsbG8=');
    assert.equal(parseDescriptor(enc('{"data":"QR=="}')).data, 'QQ==');
    assert.throws(() => parseDescriptor(enc('{"data":"aGVsbG8"}')), GoJsonError);
    assert.throws(() => parseDescriptor(enc('{"data":"a-b_"}')), GoJsonError);
  });

  test('negative and zero-signed integers follow ParseInt', () => {
    assert.equal(parseDescriptor(enc('{"size":-5}')).size, -5);
    assert.ok(Object.is(parseDescriptor(enc('{"size":-0}')).size, 0));
  });

  // Type errors (Go's UnmarshalTypeError) and syntax errors alike fail the decode.
  const rejected: [string, string][] = [
    ['fractional size', '{"size":1.0}'],
    ['exponent size', '{"size":1e2}'],
    ['string size', '{"size":"1"}'],
    ['size beyond safe integers', '{"size":9007199254740993}'],
    ['number media type', '{"mediaType":1}'],
    ['array annotations', '{"annotations":[]}'],
    ['number annotation value', '{"annotations":{"k":1}}'],
    ['string platform', '{"platform":"linux"}'],
    ['trailing comma', '{"size":1,}'],
    ['trailing data', '{} {}'],
    ['single quotes', "{'size':1}"],
    ['leading zero', '{"size":01}'],
    ['raw control character in a string', '{"mediaType":"a\tb"}'],
    ['bad escape', '{"mediaType":"\\x41"}'],
    ['short \\u escape', '{"mediaType":"\\u12"}'],
    ['unterminated', '{"mediaType":"a'],
    ['empty input', ''],
    ['NaN', '{"size":NaN}'],
    ['BOM', '\ufeff{}'],
  ];
  for (const [name, json] of rejected) {
    test(`rejects ${name}`, () => assert.throws(() => parseDescriptor(enc(json)), GoJsonError));
  }

  test('deep nesting is a typed error, not a crash', () => {
    assert.throws(() => parseDescriptor(enc(`{"x":${'['.repeat(20000)}${']'.repeat(20000)}}`)), GoJsonError);
  });

  test('string escapes and surrogates decode as Go does', () => {
    const mt = (json: string) => parseDescriptor(enc(`{"mediaType":${json}}`)).mediaType;
    assert.equal(mt('"\\ud83d\\ude00"'), '😀');
    assert.equal(mt('"\\ud800x"'), '\uFFFDx');
    assert.equal(mt('"\\ude00"'), '\uFFFD');
    assert.equal(mt('"\\ud83d\\u0041"'), '\uFFFDA');
    assert.equal(mt('"\\ud83d\\ud83d\\ude00"'), '\uFFFD😀');
    assert.equal(mt('"\\u003c\\/\\"\\\\\\b\\f\\n\\r\\t"'), '</"\\\b\f\n\r\t');
  });

  test('invalid UTF-8 becomes one U+FFFD per bad byte (Go), not per maximal subpart', () => {
    const raw = (bytes: number[]) => parseDescriptor(Uint8Array.from([...enc('{"mediaType":"'), ...bytes, ...enc('"}')])).mediaType;
    assert.equal(raw([0xff]), '\uFFFD');
    assert.equal(raw([0xe2, 0x82, 0x41]), '\uFFFD\uFFFDA'); // TextDecoder gives one U+FFFD here
    assert.equal(raw([0xed, 0xa0, 0x80]), '\uFFFD\uFFFD\uFFFD'); // an encoded surrogate
    assert.equal(raw([0xc0, 0xaf]), '\uFFFD\uFFFD'); // overlong '/'
    assert.equal(raw([0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]), '€😀');
    // Re-encoding writes the replacement character raw.
    const d = parseDescriptor(Uint8Array.from([...enc('{"mediaType":"'), 0xff, ...enc('","digest":"d","size":0}')]));
    assert.deepEqual([...marshalDescriptor(d).subarray(14, 17)], [0xef, 0xbf, 0xbd]);
  });

  test('invalid UTF-8 outside strings is a syntax error', () => {
    assert.throws(() => parseDescriptor(Uint8Array.from([0x7b, 0xff, 0x7d])), GoJsonError);
  });
});
