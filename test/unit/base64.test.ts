import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../src/ingress/http/base64.js';

const bytes = (...b: number[]) => Buffer.from(b);

describe('decodeBase64: accepted forms', () => {
  it('standard, padded', () => {
    expect(decodeBase64('aGVsbG8=')).toEqual(Buffer.from('hello'));
    expect(decodeBase64('aGk=')).toEqual(Buffer.from('hi'));
    expect(decodeBase64('aA==')).toEqual(Buffer.from('h'));
    expect(decodeBase64('aGVs')).toEqual(Buffer.from('hel'));
  });

  it('standard, unpadded', () => {
    expect(decodeBase64('aGVsbG8')).toEqual(Buffer.from('hello'));
    expect(decodeBase64('aA')).toEqual(Buffer.from('h'));
  });

  it('standard alphabet with + and /', () => {
    expect(decodeBase64('+/+/')).toEqual(bytes(0xfb, 0xff, 0xbf));
    expect(decodeBase64('++8=')).toEqual(bytes(0xfb, 0xef));
    expect(decodeBase64('++8')).toEqual(bytes(0xfb, 0xef));
  });

  it('URL-safe, padded and unpadded', () => {
    expect(decodeBase64('-_-_')).toEqual(bytes(0xfb, 0xff, 0xbf));
    expect(decodeBase64('--8=')).toEqual(bytes(0xfb, 0xef));
    expect(decodeBase64('--8')).toEqual(bytes(0xfb, 0xef));
    expect(decodeBase64('_w==')).toEqual(bytes(0xff));
    expect(decodeBase64('_w')).toEqual(bytes(0xff));
  });

  it('every byte value round-trips through every form', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (let n = 0; n <= 10; n++) {
      const data = all.subarray(100, 100 + n);
      const std = data.toString('base64');
      const url = data.toString('base64url');
      for (const form of [std, std.replace(/=+$/, ''), url, url + '='.repeat((4 - (url.length % 4)) % 4)]) {
        expect(decodeBase64(form), form).toEqual(data);
      }
    }
    expect(decodeBase64(all.toString('base64'))).toEqual(all);
    expect(decodeBase64(all.toString('base64url'))).toEqual(all);
  });

  it('empty string -> empty buffer', () => {
    const out = decodeBase64('');
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out!.length).toBe(0);
  });
});

describe('decodeBase64: rejected forms', () => {
  it('invalid characters', () => {
    for (const s of ['aGVs*G8=', 'aGVs bG8=', 'ä===', 'aGVs.', '!!!!', 'aG\u0000s']) {
      expect(decodeBase64(s), JSON.stringify(s)).toBeUndefined();
    }
  });

  it('mixed alphabets', () => {
    expect(decodeBase64('+_+_')).toBeUndefined();
    expect(decodeBase64('ab-/')).toBeUndefined();
    expect(decodeBase64('-/8=')).toBeUndefined();
  });

  it('bad padding', () => {
    for (const s of ['abc==', 'a===', '====', '=', '==', 'ab=', 'ab===', 'ab=c', 'a=bc', '=abc', 'ab==ab==', 'aGk=aGk=', 'abcd====']) {
      expect(decodeBase64(s), s).toBeUndefined();
    }
  });

  it('a dangling sextet (length % 4 == 1)', () => {
    for (const s of ['a', 'abcde', 'aGVsbG8hX']) expect(decodeBase64(s), s).toBeUndefined();
  });

  it('whitespace anywhere', () => {
    for (const s of [' aGk=', 'aGk= ', 'aG k=', 'aGk=\n', '\naGk=', 'aG\nk=', 'aGk\t', 'aGk\r\n']) {
      expect(decodeBase64(s), JSON.stringify(s)).toBeUndefined();
    }
  });
});
