// Run as a child process by the layout lock test: opens the layout given and points `count` tags named
// `<prefix>-<i>` at the manifest given by digest, one after another, as separate CLIs would.
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';

const [dir, digest, prefix, count] = process.argv.slice(2);
const layout = await OciLayoutTarget.open(dir!);
const desc = await layout.resolve(digest!);
for (let i = 0; i < Number(count); i++) await layout.tag(desc, `${prefix}-${i}`);
