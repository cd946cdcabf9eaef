import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  PushServiceClient,
  type PushDataBatchResponse,
  PushDataRequest,
  type PushDataResponse,
} from '../../gen/pushwire/v1/push.js';

export function pushClient(address: string): PushServiceClient {
  return new PushServiceClient(address, credentials.createInsecure());
}

/** PushData as a promise; rejects with the grpc-js ServiceError (err.code is the status code). */
export function pushData(client: PushServiceClient, req: Partial<PushDataRequest>): Promise<PushDataResponse> {
  return new Promise((resolve, reject) =>
    client.pushData(PushDataRequest.fromPartial(req), (err: ServiceError | null, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** PushDataBatch as a promise; rejects with the grpc-js ServiceError. */
export function pushDataBatch(client: PushServiceClient, pushes: Partial<PushDataRequest>[]): Promise<PushDataBatchResponse> {
  return new Promise((resolve, reject) =>
    client.pushDataBatch(
      { pushes: pushes.map((p) => PushDataRequest.fromPartial(p)) },
      (err: ServiceError | null, res) => (err ? reject(err) : resolve(res)),
    ),
  );
}

/** POST /v1/pushData with a JSON body (object or raw string). */
export async function restPush(
  httpUrl: string,
  body: unknown,
  init: RequestInit = {},
  path = '/v1/pushData',
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

export const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
