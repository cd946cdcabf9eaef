import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const hasProtoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' }).status === 0;

describe('proto/ contract', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pushwire-proto-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('buf lint passes', () => {
    const r = spawnSync(join(root, 'node_modules', '.bin', 'buf'), ['lint'], { cwd: root, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout.trim()).toBe('');
  });

  it('protoc compiles proto/ (with the vendored google/api protos)', () => {
    if (!hasProtoc) {
      // CI installs protobuf-compiler: a missing protoc there is a failure, not a skip.
      expect(process.env.CI, 'protoc is not on PATH but CI is set').toBeFalsy();
      // Locally, at least check that the contract parses with the same include paths.
      const def = protoLoader.loadSync('pushwire/v1/push.proto', { includeDirs: [join(root, 'proto'), join(root, 'third_party')] });
      expect(Object.keys(def)).toContain('pushwire.v1.PushService');
      expect(Object.keys(def)).toContain('pushwire.v1.PushDataRequest');
      return;
    }
    const out = join(tmp, 'push.pb');
    const r = spawnSync(
      'protoc',
      ['-I', 'proto', '-I', 'third_party', '--include_imports', `--descriptor_set_out=${out}`, 'proto/pushwire/v1/push.proto'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const set = fromBinary(FileDescriptorSetSchema, readFileSync(out));
    const names = set.file.map((f) => f.name);
    expect(names).toContain('pushwire/v1/push.proto');
    expect(names).toContain('google/api/annotations.proto');
    const push = set.file.find((f) => f.name === 'pushwire/v1/push.proto')!;
    expect(push.package).toBe('pushwire.v1');
    expect(push.service.map((s) => s.name)).toEqual(['PushService']);
    // The HTTP rule survives as a method option (extension 72295728 = google.api.http), so gateways see it.
    const method = push.service[0]!.method[0]!;
    expect(method.name).toBe('PushData');
    expect(method.inputType).toBe('.pushwire.v1.PushDataRequest');
    expect(method.outputType).toBe('.pushwire.v1.PushDataResponse');
    expect((method.options?.$unknown ?? []).map((u) => u.no)).toContain(72295728);
  });

  it('PushDataRequest keeps gpush Data field names, numbers and types', () => {
    const def = protoLoader.loadSync('pushwire/v1/push.proto', { includeDirs: [join(root, 'proto'), join(root, 'third_party')] });
    const req = def['pushwire.v1.PushDataRequest'] as unknown as { type: { field: Array<{ name: string; number: number; type: string; label: string }> } };
    // gpush's three fields first, unchanged; pushwire's additions come after them.
    expect(req.type.field.slice(0, 3).map((f) => [f.name, f.number, f.type, f.label])).toEqual([
      ['uid', 1, 'TYPE_STRING', 'LABEL_OPTIONAL'],
      ['topic', 2, 'TYPE_STRING', 'LABEL_OPTIONAL'],
      ['data', 3, 'TYPE_BYTES', 'LABEL_OPTIONAL'],
    ]);
    expect(req.type.field.slice(3).every((f) => f.number > 3)).toBe(true);
    const svc = def['pushwire.v1.PushService'] as unknown as Record<string, { path: string; requestStream: boolean; responseStream: boolean }>;
    expect(svc.PushData!.path).toBe('/pushwire.v1.PushService/PushData');
    expect(svc.PushData!.requestStream).toBe(false);
    expect(svc.PushData!.responseStream).toBe(false);
  });

  it('PushData carries the google.api.http rule POST /v1/pushData with body "*"', () => {
    const def = protoLoader.loadSync('pushwire/v1/push.proto', { includeDirs: [join(root, 'proto'), join(root, 'third_party')] });
    const svc = def['pushwire.v1.PushService'] as unknown as Record<string, { options: Record<string, unknown> }>;
    expect(svc.PushData!.options['(google.api.http)']).toEqual({ post: '/v1/pushData', body: '*' });
  });
});
