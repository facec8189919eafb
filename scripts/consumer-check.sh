#!/usr/bin/env bash
# The package as a user gets it: packs it (`prepare` builds dist/), installs the tarball into an empty
# CDK app with its own aws-cdk-lib, constructs, aws-cdk and TypeScript (this repository's versions, from
# the npm registry through the npm cache), then
#   - type-checks and compiles the README's "Use in your CDK app" example against the shipped
#     declarations (as CommonJS, as `cdk init` makes it, and as an ES module), synthesizes it with `cdk synth` without network,
#     credentials, Docker or esbuild, and checks the template and the asset;
#   - imports both entry points as ES modules and synthesizes the construct once more (same asset hash);
#   - runs the README's "Use as a library" example and `npx soci-indexer --version|build` on copies of
#     sample/layout (the package does not ship it), checks both found the same zTOCs, and that
#     `ztoc build` and `ztoc verify` agree on one of its layers.
# Prints the packed size and file count. Run by .ci/run; `npm run consumer-check` runs it by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CDK_DISABLE_CLI_TELEMETRY=true AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
max_packed_bytes=1500000

work=$(mktemp -d "${TMPDIR:-/tmp}/soci-indexer-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "consumer-check: $*" >&2; exit 1; }
step() { echo "consumer-check: $*"; }

# --- pack ------------------------------------------------------------------------------------------
npm pack --silent --json --pack-destination "$work" > "$work/pack.json"
tarball=$(node -e '
  const [p] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const allowed = /^(dist\/|bin\/soci-indexer$|package\.json$|README\.md$|LICENSE$|CHANGELOG\.md$)/;
  const stray = p.files.map((f) => f.path).filter((path) => !allowed.test(path) || path.endsWith(".ts") && !path.endsWith(".d.ts"));
  if (stray.length) { console.error("files that do not run: " + stray.join(", ")); process.exit(1); }
  for (const need of ["dist/index.mjs", "dist/index.cjs", "dist/cdk.mjs", "dist/cdk.cjs", "dist/cli.mjs", "dist/lambda/index.mjs",
    "dist/lambda/layer-worker.mjs", "dist/lambda/toc-worker.mjs", "dist/types/lambda/index.d.ts", "dist/types/infra/index.d.ts", "dist/types/lambda/index.d.cts", "dist/types/infra/index.d.cts", "LICENSE", "CHANGELOG.md"]) {
    if (!p.files.some((f) => f.path === need)) { console.error("missing from the package: " + need); process.exit(1); }
  }
  if (p.size > Number(process.argv[2])) { console.error(`packed size ${p.size} bytes is over the limit ${process.argv[2]}`); process.exit(1); }
  console.error(`consumer-check: packed ${p.filename}: ${(p.size / 1e6).toFixed(2)} MB packed (${p.size} bytes, limit ${process.argv[2]}), ${(p.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${p.entryCount} files`);
  console.log(p.filename);
' "$work/pack.json" "$max_packed_bytes") || fail "the packed file list or size is wrong"

# --- an empty CDK app, as `cdk init app --language typescript` makes it (CommonJS) --------------------
app=$work/app
mkdir -p "$app/bin"
cd "$app"
cat > package.json <<'EOF'
{ "name": "consumer-app", "version": "0.0.0", "private": true }
EOF
dev() { node -p "require('$repo/package.json').devDependencies['$1']"; }
step "installing the tarball with aws-cdk-lib@$(dev aws-cdk-lib) constructs@$(dev constructs) aws-cdk@$(dev aws-cdk)"
npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "aws-cdk-lib@$(dev aws-cdk-lib)" "constructs@$(dev constructs)" "$work/$tarball"
npm install --no-audit --no-fund --prefer-offline --loglevel=error --save-dev \
  "aws-cdk@$(dev aws-cdk)" "typescript@$(dev typescript)" "@types/node@$(dev @types/node)"
[ ! -e node_modules/esbuild ] || fail "esbuild got installed; the construct must not need it"
[ ! -e node_modules/tsx ] || fail "tsx got installed; nothing may need a TypeScript loader at run time"

# The README's example, verbatim: the first ```ts block after the heading.
readme_block() {
  node -e '
    const text = require("fs").readFileSync(process.argv[1], "utf8");
    const at = text.indexOf(process.argv[2]);
    const m = at < 0 ? null : /```ts\n([\s\S]*?)```/.exec(text.slice(at));
    if (!m) { console.error("no ts block after " + process.argv[2]); process.exit(1); }
    process.stdout.write(m[1]);
  ' "$repo/README.md" "$1"
}
readme_block '### Use in your CDK app' > bin/app.ts
# The same source as an ES module app (.mts), so both declaration flavours (.d.ts, .d.cts) are checked.
mkdir esm && cp bin/app.ts esm/app.mts
cat > tsconfig.json <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "lib": ["es2022"],
    "strict": true,
    "skipLibCheck": false,
    "types": ["node"],
    "rootDir": ".",
    "outDir": "build"
  },
  "include": ["bin", "esm"]
}
EOF
cat > cdk.json <<'EOF'
{ "app": "node build/bin/app.js" }
EOF
step "type-checking and compiling the README example against the shipped declarations"
npx tsc -p . || fail "the README example does not compile against the package"

step "cdk synth (no network, no credentials, no Docker)"
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n); else step "(unshare unavailable: synthesizing with the network up)"; fi
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true CDK_DOCKER=/bin/false \
  "${offline[@]}" npx cdk synth --quiet --no-notices > /dev/null || fail "cdk synth failed"

expected_hash=$(cd "$repo" && node -e '
  const { FileSystem } = require("aws-cdk-lib");
  console.log(FileSystem.fingerprint("dist/lambda", { exclude: [".is_custom_resource"] }));')
node -e '
  const fs = require("fs");
  const [outdir, expectedHash, builtLambda] = process.argv.slice(1);
  const template = JSON.parse(fs.readFileSync(`${outdir}/Images.template.json`, "utf8"));
  const of = (type) => Object.values(template.Resources).filter((r) => r.Type === type);
  const check = (ok, what) => { if (!ok) { console.error("template: " + what); process.exit(1); } };
  const fns = of("AWS::Lambda::Function");
  // The indexer and the scheduled sync, both from the one prebuilt asset.
  check(fns.length === 2, `two functions (indexer, sync), got ${fns.length}`);
  const indexer = fns.find((f) => f.Properties.Handler === "index.handler");
  const sync = fns.find((f) => f.Properties.Handler === "sync-handler.handler");
  check(indexer && sync, `handlers index.handler and sync-handler.handler, got ${fns.map((f) => f.Properties.Handler)}`);
  check(JSON.stringify(sync.Properties.Code) === JSON.stringify(indexer.Properties.Code), "the sync function deploys the same asset");
  const fn = indexer.Properties;
  check(fn.Runtime === "nodejs24.x", `runtime nodejs24.x, got ${fn.Runtime}`);
    check(JSON.stringify(fn.Architectures) === "[\"arm64\"]", "arm64");
  check(fn.Environment.Variables.SOCI_REPOSITORY_FILTERS === "app-*,ml/trainer:release-*", "the allow-list reaches the handler");
  const hash = String(fn.Code.S3Key).replace(/\.zip$/, "");
  check(hash === expectedHash, `asset hash ${hash} is not the hash of the built dist/lambda (${expectedHash})`);
  // The built dist/lambda as it is: the four entries and the chunks they share, each with its map.
  const staged = fs.readdirSync(`${outdir}/asset.${hash}`).sort();
  const entries = staged.filter((f) => !/^chunk-[A-Z0-9]{8}\.mjs(\.map)?$/.test(f)).join(" ");
  check(entries === "index.mjs index.mjs.map layer-worker.mjs layer-worker.mjs.map sync-handler.mjs sync-handler.mjs.map toc-worker.mjs toc-worker.mjs.map", `asset entries: ${entries}`);
  check(staged.join(" ") === fs.readdirSync(builtLambda).sort().join(" "), `asset files: ${staged.join(" ")}`);
  const rules = of("AWS::Events::Rule");
  const pushRules = rules.filter((r) => r.Properties.EventPattern);
  const schedules = rules.filter((r) => r.Properties.ScheduleExpression);
  check(rules.length === 2 && pushRules.length === 1 && schedules.length === 1, "one push rule and one sync schedule");
  check(schedules[0].Properties.ScheduleExpression === "rate(1 day)", "the sync runs daily by default");
  const pattern = pushRules[0].Properties.EventPattern;
  check(pattern.source[0] === "aws.ecr" && pattern["detail-type"][0] === "ECR Image Action", "the rule takes ECR pushes");
  check(JSON.stringify(pattern.detail).includes("{\"prefix\":\"app-\"}"), "the rule filters on the allow-list");
  check(pushRules[0].Properties.Targets.length === 1 && pushRules[0].Properties.Targets[0].DeadLetterConfig, "the rule targets the function with a dead-letter queue");
  check(of("AWS::SQS::Queue").length === 1, "one dead-letter queue");
  check(of("AWS::CloudWatch::Alarm").length === 4 && of("AWS::CloudWatch::Alarm").every((a) => a.Properties.AlarmActions?.length === 1), "four alarms on the topic");
  check(of("AWS::CloudWatch::Dashboard").length === 1, "the example dashboard");
  console.log(hash);
' cdk.out "$expected_hash" "$repo/dist/lambda" > "$work/cjs-hash" || fail "the synthesized template is wrong"
step "template checked; asset $(cat "$work/cjs-hash")"

step "the entry points as ES modules"
cat > esm-check.mjs <<'EOF'
import { App, Stack } from 'aws-cdk-lib';
import { SociIndexer, SociIndexerStack } from 'soci-indexer/cdk';
import * as core from 'soci-indexer';

for (const name of ['buildSociIndex', 'OciLayoutTarget', 'RegistryTarget', 'buildZtoc', 'parseZtoc', 'verifyZtoc']) {
  if (typeof core[name] !== 'function') throw new Error(`soci-indexer exports no ${name}`);
}
const app = new App({ outdir: 'esm.out' });
new SociIndexer(new Stack(app, 'Esm'), 'Indexer', { repositories: ['app'] });
new SociIndexerStack(app, 'Ready', { settings: { repositories: ['web'] } });
const fn = Object.values(app.synth().getStackByName('Esm').template.Resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Handler === 'index.handler');
console.log(fn.Properties.Code.S3Key.replace(/\.zip$/, ''));
EOF
CDK_DOCKER=/bin/false "${offline[@]}" node esm-check.mjs > "$work/esm-hash" || fail "importing or synthesizing from ES modules failed"
cmp -s "$work/esm-hash" "$work/cjs-hash" || fail "the ES module construct deploys another asset ($(cat "$work/esm-hash"))"

step "the core API: the README's library example on a copy of sample/layout"
cp -R "$repo/sample/layout" layout
readme_block '### Use as a library' > library-example.mjs
"${offline[@]}" node library-example.mjs > "$work/library.out" || fail "the README library example failed"
head -1 "$work/library.out" | grep -qx "created \[ 'latest-soci' \]" || fail "library example: $(head -1 "$work/library.out")"

step "the CLI from the installed package"
version=$(npx --no-install soci-indexer --version)
[ "$version" = "$(node -p "require('$repo/package.json').version")" ] || fail "soci-indexer --version says $version"
cp -R "$repo/sample/layout" cli-layout
"${offline[@]}" npx --no-install soci-indexer build oci:cli-layout:latest --min-layer-size 1048576 --json > "$work/cli.json" \
  || fail "soci-indexer build failed"
node -e '
  const fs = require("fs");
  const result = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const check = (ok, what) => { if (!ok) { console.error("cli: " + what); process.exit(1); } };
  check(result.status === "created" && result.output.tags[0] === "latest-soci", `status ${result.status}`);
  const cli = result.platforms.flatMap((p) => p.layers.map((l) => `${p.platform} ${l.digest} ${l.ztocDigest ?? l.reason}`));
  const library = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").slice(1);
  check(cli.some((line) => / sha256:[0-9a-f]{64} sha256:[0-9a-f]{64}$/.test(line)), "no layer was indexed");
  check(JSON.stringify(cli) === JSON.stringify(library), `the CLI and the library disagree:\n${cli.join("\n")}\n---\n${library.join("\n")}`);
' "$work/cli.json" "$work/library.out" || fail "the CLI build is wrong"
"${offline[@]}" npx --no-install soci-indexer build oci:cli-layout:latest --min-layer-size 1048576 --json > "$work/cli2.json"
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (r.status !== "already-indexed") process.exit(1);' "$work/cli2.json" \
  || fail "a second build of the same layout is not already-indexed"

layer=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const l = r.platforms.flatMap((p) => p.layers).find((l) => l.ztocDigest);
  console.log(l.digest.slice(7), l.ztocDigest);' "$work/cli.json")
read -r layer_hex ztoc_digest <<< "$layer"
"${offline[@]}" npx --no-install soci-indexer ztoc build "layout/blobs/sha256/$layer_hex" -o layer.ztoc > /dev/null || fail "ztoc build failed"
[ "sha256:$(sha256sum layer.ztoc | cut -d' ' -f1)" = "$ztoc_digest" ] || fail "ztoc build wrote another zTOC than the image build"
"${offline[@]}" npx --no-install soci-indexer ztoc verify "layout/blobs/sha256/$layer_hex" layer.ztoc > /dev/null || fail "ztoc verify failed"

step "ok"
