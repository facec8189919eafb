// Cross-repository blob mount (OCI distribution: `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`):
// 201 means the blob is now in this repository; 202 means the registry opened an ordinary upload session
// instead (mounting unsupported or refused, the blob missing there), which is left to expire: the caller
// then uploads the bytes itself, in a session of its own.
import type { Descriptor } from '../oci/target.ts';
import type { RegistryHttp } from './http.ts';

/** True when `desc` was mounted from `fromRepository` of the same registry. */
export async function mountBlob(http: RegistryHttp, desc: Descriptor, fromRepository: string, signal?: AbortSignal): Promise<boolean> {
  const query = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(fromRepository)}`;
  const operation = `mount blob ${http.repository}@${desc.digest} from ${fromRepository}`;
  const response = await http.request({ method: 'POST', path: `blobs/uploads/${query}`, push: true, operation, ok: [201, 202], signal });
  await response.body?.cancel();
  return response.status === 201;
}
