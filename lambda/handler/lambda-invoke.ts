// Asynchronous Lambda Invoke (InvocationType Event) with SigV4, for the sync's fan-out. The package has no
// @aws-sdk/client-lambda; Invoke is one signed POST, so it is sent with the signer and credential chain
// the ECR client already brings (both bundled into the Lambda asset). Honours AWS_ENDPOINT_URL_LAMBDA
// (tests point it at a loopback fake), as the SDK clients do.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';

type Env = Readonly<Record<string, string | undefined>>;

/** node:crypto in the shape the signer expects (a constructor taking an optional HMAC secret). */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A failed Invoke, shaped like an SDK error (name, $metadata.httpStatusCode) so backoff can classify it. */
export class InvokeError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(name: string, status: number, message: string) {
    super(message);
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

export type AsyncInvoker = (functionName: string, payload: unknown) => Promise<void>;

export function lambdaInvoker(env: Env = process.env): AsyncInvoker {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const endpoint = new URL(env.AWS_ENDPOINT_URL_LAMBDA ?? env.AWS_ENDPOINT_URL ?? `https://lambda.${region}.amazonaws.com`);
  const signer = new SignatureV4({ credentials: defaultProvider(), region, service: 'lambda', sha256: NodeSha256 });
  return async (functionName, payload) => {
    const body = JSON.stringify(payload);
    const path = `${endpoint.pathname.replace(/\/$/, '')}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;
    const signed = await signer.sign({
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port && { port: Number(endpoint.port) }),
      path,
      query: {},
      headers: { host: endpoint.host, 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
      body,
    });
    let response: Response;
    try {
      response = await fetch(new URL(path, endpoint), { method: 'POST', headers: signed.headers as Record<string, string>, body });
    } catch (err) {
      throw new InvokeError('NetworkError', 503, `lambda:InvokeFunction ${functionName}: ${(err as Error).message}`);
    }
    const text = await response.text();
    if (response.status === 202) return;
    const type = response.headers.get('x-amzn-errortype')?.split(':')[0] ?? `HTTP${response.status}`;
    throw new InvokeError(
      type,
      response.status,
      `lambda:InvokeFunction ${functionName} failed (${response.status} ${type}: ${text.slice(0, 200)})`,
    );
  };
}
