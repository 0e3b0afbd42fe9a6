// SHA-512 (FIPS 180-4) for Ed25519 verification where WebCrypto is missing (plain HTTP on
// another host). Only short messages are hashed here, so BigInt's speed is enough.
import { fractionalRoots } from "./sha256.js";

const K = fractionalRoots(80, 3, 64);
const H0 = fractionalRoots(8, 2, 64);
const MASK = (1n << 64n) - 1n;
const rotr = (x, n) => ((x >> n) | (x << (64n - n))) & MASK;

export function sha512(bytes) {
  const padded = new Uint8Array(Math.ceil((bytes.length + 17) / 128) * 128);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setBigUint64(padded.length - 8, BigInt(bytes.length) * 8n);
  const s = H0.slice();
  const w = new Array(80);
  for (let offset = 0; offset < padded.length; offset += 128) {
    for (let t = 0; t < 16; t++) w[t] = view.getBigUint64(offset + 8 * t);
    for (let t = 16; t < 80; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = rotr(x, 1n) ^ rotr(x, 8n) ^ (x >> 7n);
      const s1 = rotr(y, 19n) ^ rotr(y, 61n) ^ (y >> 6n);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & MASK;
    }
    let [a, b, c, d, e, f, g, h] = s;
    for (let t = 0; t < 80; t++) {
      const ch = (e & f) ^ (~e & MASK & g);
      const t1 = (h + (rotr(e, 14n) ^ rotr(e, 18n) ^ rotr(e, 41n)) + ch + K[t] + w[t]) & MASK;
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = ((rotr(a, 28n) ^ rotr(a, 34n) ^ rotr(a, 39n)) + maj) & MASK;
      [h, g, f, e, d, c, b, a] = [g, f, e, (d + t1) & MASK, c, b, a, (t1 + t2) & MASK];
    }
    [a, b, c, d, e, f, g, h].forEach((v, i) => (s[i] = (s[i] + v) & MASK));
  }
  const out = new Uint8Array(64);
  const ov = new DataView(out.buffer);
  s.forEach((v, i) => ov.setBigUint64(8 * i, v));
  return out;
}
